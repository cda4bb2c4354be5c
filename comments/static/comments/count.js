/* Comment counts for list pages in one batch request; see README.md, "The widget". */
(() => {
  "use strict";
  const me = document.currentScript || document.querySelector("script[src*='/count.js']");
  if (!me) return;
  const src = new URL(me.src, location.href);
  const m = src.href.match(/^(.*\/)static\/comments\/count\.js/);
  const API = (m ? m[1] : src.origin + "/") + "api/v1/articles/counts/?";
  const T = {
    en: ["Be the first to comment", "1 comment", "{n} comments"],
    de: ["Schreiben Sie den ersten Kommentar", "1 Kommentar", "{n} Kommentare"],
    zh: ["快来发表第一条评论", "1 条评论", "{n} 条评论"],
  };
  function fill(e, n) {
    const code = (e.dataset.lang || (e.closest("[lang]") || {}).lang || "en").toLowerCase().split(/[-_]/)[0];
    const lang = T[code] ? code : "en";
    const ds = e.dataset;
    const text = n === 0 ? ds.textFirst || T[lang][0] : n === 1 ? ds.textOne || T[lang][1] : ds.textMany || T[lang][2];
    e.textContent = text.replace("{n}", n.toLocaleString(lang));
    ds.commentsCountValue = n;
  }
  function run() {
    const els = [...document.querySelectorAll("[data-comments-count]")];
    const slugs = [...new Set(els.map((e) => e.dataset.commentsCount).filter((s) => /^[-\w]{1,200}$/.test(s)))];
    for (let i = 0; i < slugs.length; i += 100) {
      const q = new URLSearchParams();
      slugs.slice(i, i + 100).forEach((s) => q.append("slug", s));
      fetch(API + q, { credentials: "omit", headers: { Accept: "application/json" } })
        .then((r) => (r.ok ? r.json() : {}))
        .then((d) => els.forEach((e) => {
          const n = d[e.dataset.commentsCount];
          if (typeof n === "number") fill(e, n);
        }))
        .catch(() => {});
    }
  }
  window.commentsCount = run;
  document.readyState === "loading" ? document.addEventListener("DOMContentLoaded", run) : run();
})();
