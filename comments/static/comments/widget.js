/* Comments widget; embedding and options: README.md, "The widget". No framework, no iframe:
 * it renders into a shadow root, inserts every server string as text and re-sanitises
 * body_html before inserting it. */
(() => {
  "use strict";
  const me = document.currentScript || document.querySelector("script[src*='/widget.js']");
  if (!me) return;
  const SRC = new URL(me.src, location.href);
  const m = SRC.href.match(/^(.*\/)static\/comments\/widget\.js/);
  const BASE = m ? m[1] : SRC.origin + "/";
  const API = BASE + "api/v1/";
  const CSS = new URL("widget.css" + SRC.search, SRC).href;
  const REL = "nofollow ugc noopener noreferrer";
  const KEEP = 7 * 864e5;
  const EPOCH = "1970-01-01T00:00:00Z";

  // Every text in English, German and Chinese; a page overrides any of them with
  // data-text-KEY="…" or data-texts='{"KEY": "…"}' (README.md, "The widget").
  const LANGS = ["en", "de", "zh"];
  const TEXTS = {
    title: ["Comments", "Kommentare", "评论"],
    first: ["Be the first to comment", "Schreiben Sie den ersten Kommentar", "快来发表第一条评论"],
    one: ["1 comment", "1 Kommentar", "1 条评论"],
    many: ["{n} comments", "{n} Kommentare", "{n} 条评论"],
    heading: ["What do you think?", "Was meinen Sie?", "你怎么看？"],
    name: ["Name", "Name", "昵称"],
    email: ["Email", "E-Mail", "电子邮箱"],
    emailHint: ["Not published", "Wird nicht veröffentlicht", "不会公开"],
    notify: ["Notify me of replies by e-mail", "Bei Antworten per E-Mail benachrichtigen", "有回复时邮件通知我"],
    url: ["Website", "Website", "网站"],
    optional: ["optional", "optional", "选填"],
    body: ["Comment", "Kommentar", "评论"],
    submit: ["Post comment", "Kommentar senden", "发表评论"],
    sending: ["Sending…", "Wird gesendet …", "正在发送…"],
    notice: [
      "This site uses Akismet to reduce spam.",
      "Diese Website verwendet Akismet, um Spam zu reduzieren.",
      "本站使用 Akismet 减少垃圾评论。",
    ],
    noticeLink: [
      "Learn how your comment data is processed.",
      "Erfahren Sie, wie Ihre Kommentardaten verarbeitet werden.",
      "了解我们如何处理您的评论数据。",
    ],
    reply: ["Reply", "Antworten", "回复"],
    replyTo: ["Reply to {name}", "{name} antworten", "回复 {name}"],
    replying: ["Replying to {name}", "Antwort an {name}", "正在回复 {name}"],
    cancelReply: ["Cancel reply", "Antwort abbrechen", "取消回复"],
    sort: ["Sort comments", "Kommentare sortieren", "评论排序"],
    newest: ["Newest first", "Neueste zuerst", "最新优先"],
    oldest: ["Oldest first", "Älteste zuerst", "最早优先"],
    more: ["Load more comments", "Weitere Kommentare laden", "加载更多评论"],
    loading: ["Loading comments…", "Kommentare werden geladen …", "正在加载评论…"],
    loaded: ["{n} more comments loaded.", "{n} weitere Kommentare geladen.", "又加载了 {n} 条评论。"],
    removed: ["This comment was removed.", "Dieser Kommentar wurde entfernt.", "此评论已被删除。"],
    edited: ["edited", "bearbeitet", "已编辑"],
    yours: ["Your comment", "Ihr Kommentar", "您的评论"],
    pending: ["Awaiting moderation", "Wartet auf Freigabe", "等待审核"],
    pendingNote: [
      "Only you can see this comment until it has been checked.",
      "Nur Sie sehen diesen Kommentar, bis er geprüft ist.",
      "审核通过前，只有您能看到这条评论。",
    ],
    held: ["Held for review", "Zur Prüfung zurückgehalten", "待人工审核"],
    heldNote: ["A moderator will review it.", "Ein Moderator wird ihn prüfen.", "管理员将进行审核。"],
    refused: ["Not published", "Nicht veröffentlicht", "未发布"],
    refusedNote: [
      "Your comment was not published: it did not pass moderation. Others cannot see it.",
      "Ihr Kommentar wurde nicht veröffentlicht: Er hat die Moderation nicht bestanden. Andere sehen ihn nicht.",
      "您的评论未能通过审核，因此没有发布，其他读者看不到它。",
    ],
    publishedNow: [
      "Your comment is now published.",
      "Ihr Kommentar ist jetzt veröffentlicht.",
      "您的评论已发布。",
    ],
    thanks: [
      "Thank you! Your comment was received and is awaiting moderation.",
      "Danke! Ihr Kommentar ist eingegangen und wartet auf Freigabe.",
      "谢谢！我们已收到您的评论，正在等待审核。",
    ],
    editUntil: [
      "You can edit or delete it until {time}.",
      "Sie können ihn bis {time} bearbeiten oder löschen.",
      "在 {time} 之前，您可以编辑或删除它。",
    ],
    edit: ["Edit", "Bearbeiten", "编辑"],
    del: ["Delete", "Löschen", "删除"],
    save: ["Save", "Speichern", "保存"],
    cancel: ["Cancel", "Abbrechen", "取消"],
    dismiss: ["Dismiss", "Ausblenden", "关闭"],
    confirmDel: ["Delete this comment?", "Diesen Kommentar löschen?", "确定删除这条评论吗？"],
    confirmYes: ["Yes, delete", "Ja, löschen", "确定删除"],
    deleted: ["Your comment was deleted.", "Ihr Kommentar wurde gelöscht.", "您的评论已删除。"],
    saved: [
      "Your changes were saved and are being checked.",
      "Ihre Änderungen wurden gespeichert und werden geprüft.",
      "修改已保存，正在重新审核。",
    ],
    eName: ["Please enter your name.", "Bitte geben Sie Ihren Namen ein.", "请输入您的昵称。"],
    eEmail: [
      "Please enter a valid email address, like name@example.com.",
      "Bitte geben Sie eine gültige E-Mail-Adresse ein, z. B. name@example.com.",
      "请输入有效的电子邮箱地址，例如 name@example.com。",
    ],
    eUrl: [
      "Enter a web address starting with http:// or https://, or leave it empty.",
      "Geben Sie eine Adresse mit http:// oder https:// ein oder lassen Sie das Feld leer.",
      "请输入以 http:// 或 https:// 开头的网址，或留空。",
    ],
    eBody: ["Please write a comment.", "Bitte schreiben Sie einen Kommentar.", "请填写评论内容。"],
    eLong: [
      "Use at most {max} characters (now {n}).",
      "Höchstens {max} Zeichen (jetzt {n}).",
      "最多 {max} 个字符（当前 {n} 个）。",
    ],
    eFix: [
      "Please correct the marked fields.",
      "Bitte korrigieren Sie die markierten Felder.",
      "请更正标出的字段。",
    ],
    eNet: [
      "Could not reach the comment server. Your text is kept; please try again.",
      "Der Kommentarserver ist nicht erreichbar. Ihr Text bleibt erhalten; bitte erneut versuchen.",
      "无法连接评论服务器。您输入的内容已保留，请重试。",
    ],
    eBusy: [
      "You are posting too quickly. Please wait {s} seconds and try again; your text is kept.",
      "Sie schreiben zu schnell. Bitte warten Sie {s} Sekunden; Ihr Text bleibt erhalten.",
      "您发表得太快了。请等待 {s} 秒后再试，您输入的内容已保留。",
    ],
    eServer: [
      "The comment server had a problem. Your text is kept; please try again shortly.",
      "Fehler beim Kommentarserver. Ihr Text bleibt erhalten; bitte gleich erneut versuchen.",
      "评论服务器出错。您输入的内容已保留，请稍后再试。",
    ],
    eClosed: [
      "Comments are closed for this article.",
      "Die Kommentare zu diesem Artikel sind geschlossen.",
      "本文评论已关闭。",
    ],
    eMissing: [
      "Comments are not available for this page.",
      "Für diese Seite sind keine Kommentare verfügbar.",
      "本页面没有评论功能。",
    ],
    eLoad: [
      "Comments could not be loaded.",
      "Die Kommentare konnten nicht geladen werden.",
      "评论加载失败。",
    ],
    retry: ["Try again", "Erneut versuchen", "重试"],
    eParent: [
      "The comment you are replying to is no longer available.",
      "Der Kommentar, auf den Sie antworten, ist nicht mehr verfügbar.",
      "您要回复的评论已不存在。",
    ],
    eGone: [
      "This comment can no longer be changed.",
      "Dieser Kommentar kann nicht mehr geändert werden.",
      "这条评论已无法修改。",
    ],
    eDup: [
      "It looks like you already posted this comment.",
      "Diesen Kommentar haben Sie anscheinend schon gesendet.",
      "您似乎已经发表过这条评论。",
    ],
  };

  // Client checks mirror the server's (comments/serializers.py); the server has the last word.
  const FIELDS = [
    ["author_name", "name", "text", "name"],
    ["author_email", "email", "email", "email"],
    ["author_url", "url", "url", "url"],
    ["body", "body"],
  ];
  const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
  const len = (s) => [...s].length;
  const MAX = { author_name: 100, author_url: 200, body: 10000 };
  function check(f, v) {
    if (len(v) > MAX[f]) return "eLong";
    if (f == "author_name") return v ? "" : "eName";
    if (f == "author_email") return EMAIL.test(v) && v.length <= 254 ? "" : "eEmail";
    if (f == "author_url") return !v || (/^https?:\/\/[^/?#\s]/i.test(v) && httpUrl(v)) ? "" : "eUrl";
    return v ? "" : "eBody";
  }
  function httpUrl(u, mailto, base) {
    try {
      const x = new URL(u, base);
      return /^https?:$/.test(x.protocol) || (mailto && x.protocol == "mailto:") ? x.href : "";
    } catch (e) {
      return "";
    }
  }

  const h = (tag, cls, text, attrs, ...kids) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    e.append(...kids);
    return e;
  };
  const fmt = (s, v) => s.replace(/\{(\w+)\}/g, (x, k) => (k in v ? v[k] : x));
  const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

  // body_html is sanitised by the server; this allowlist is a second line of defence.
  const TAGS = /^(p|br|a|em|strong|code|pre|ul|ol|li|blockquote)$/i;
  const DROP = /^(script|style|template|iframe|object|embed|noscript|svg|math|textarea|title)$/i;
  function clean(node) {
    for (const n of [...node.childNodes]) {
      if (n.nodeType == 3) continue;
      if (n.nodeType != 1) { n.remove(); continue; }
      if (!TAGS.test(n.tagName)) { n.replaceWith(DROP.test(n.tagName) ? "" : n.textContent); continue; }
      const href = n.tagName == "A" && httpUrl(n.getAttribute("href") || "", true);
      const start = n.tagName == "OL" && /^\d{1,9}$/.test(n.getAttribute("start")) && n.getAttribute("start");
      for (const a of [...n.attributes]) n.removeAttribute(a.name);
      if (href) { n.setAttribute("href", href); n.setAttribute("rel", REL); }
      if (start) n.setAttribute("start", start);
      clean(n);
    }
    return node;
  }
  function safeHtml(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html || "";
    return clean(tpl.content);
  }

  const stored = (k) => {
    try { return JSON.parse(localStorage.getItem(k)) || []; } catch (e) { return []; }
  };
  const store = (k, v) => {
    try { v.length ? localStorage.setItem(k, JSON.stringify(v)) : localStorage.removeItem(k); } catch (e) { /* off */ }
  };

  async function api(path, opt = {}) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 20000);
    const headers = { Accept: "application/json", ...opt.headers };
    if (opt.body) headers["Content-Type"] = "application/json";
    try {
      return await fetch(API + path, { ...opt, headers, credentials: "omit", signal: ctl.signal });
    } finally {
      clearTimeout(timer);
    }
  }
  const json = (r) => r.json().catch(() => ({}));

  function mount(host) {
    const ds = host.dataset;
    // data-comments-url, no slug: resolve the address (empty: this page) first.
    if (!ds.commentsArticle && "commentsUrl" in ds && !ds.commentsUrlDone) {
      ds.commentsUrlDone = 1;
      const go = (a) => mount(host, a && a.slug && (ds.commentsArticle = a.slug));
      return Promise.resolve().then(() => api("articles/resolve/?url=" + encodeURIComponent(new URL(ds.commentsUrl, location)))).then((r) => r.ok && r.json()).then(go, go);
    }
    if (ds.commentsReady) return;
    ds.commentsReady = "1";
    const slug = ds.commentsArticle || "";
    const path = "articles/" + encodeURIComponent(slug) + "/";
    const code = (ds.lang || (host.closest("[lang]") || {}).lang || "en").toLowerCase().split(/[-_]/)[0];
    const lang = LANGS.includes(code) ? code : "en";
    const t = {};
    for (const k in TEXTS) t[k] = TEXTS[k][LANGS.indexOf(lang)];
    let over = {};
    try { over = JSON.parse(ds.texts || "{}"); } catch (e) { /* ignored */ }
    for (const k in ds) if (/^text[A-Z]/.test(k)) over[k[4].toLowerCase() + k.slice(5)] = ds[k];
    for (const k in over) if (typeof over[k] == "string") t[k] = over[k];
    const theme = /^(light|dark|auto)$/.test(ds.theme) ? ds.theme : "light";
    const size = Math.min(100, Math.max(1, parseInt(ds.pageSize, 10) || 20));
    let order = ds.order == "oldest" ? "oldest" : "newest";
    const privacy = (ds.privacyUrl && httpUrl(ds.privacyUrl, 0, location.href)) || BASE + "privacy/";
    const KEY = "comments:" + BASE + slug;
    const num = (n) => n.toLocaleString(lang);
    const mine = (rec, method, body) => api("comments/" + rec.id + "/", { method, body: body && JSON.stringify(body), headers: { "X-Comment-Token": rec.t } });
    const open = (rec) => Date.now() < Date.parse(rec.e);
    const why = (f, v, k) => fmt(t[k], { n: num(len(v)), max: num(MAX[f] || 0) });

    let shadow;
    try {
      shadow = host.attachShadow({ mode: "open" });
    } catch (e) {
      shadow = host.appendChild(h("div")).attachShadow({ mode: "open" });
    }
    const root = h("section", "cw", null, { lang, "aria-labelledby": "cw-h", part: "root" });
    const dark = matchMedia("(prefers-color-scheme: dark)");
    const paint = () => root.classList.toggle("cw--dark", theme == "dark" || (theme == "auto" && dark.matches));
    paint();
    dark.addEventListener("change", paint);
    root.hidden = true;
    const show = () => { root.hidden = false; };
    const link = h("link", "", null, { rel: "stylesheet", href: CSS });
    link.onload = link.onerror = show;
    setTimeout(show, 3000);
    shadow.append(link, root);

    const btn = (text, onclick, cls, attrs) => {
      const b = h("button", "cw-btn " + (cls || "cw-small"), text, { type: "button", ...attrs });
      b.onclick = onclick;
      return b;
    };
    const heading = h("h2", "", t.title, { id: "cw-h", tabindex: "-1" });
    const live = h("div", "cw-sr", null, { role: "status", "aria-live": "polite" });
    const slot = h("div");
    const bar = h("div", "cw-bar", null, { role: "group", "aria-label": t.sort });
    const state = h("p", "cw-state", t.loading);
    const list = h("ol", "cw-list");
    const more = btn(t.more, () => more.getAttribute("aria-disabled") != "true" && load(false, true), "cw-more");
    bar.hidden = more.hidden = true;
    root.append(heading, live, slot, bar, state, list, more);
    const say = (text) => {
      live.textContent = "";
      setTimeout(() => { live.textContent = text; }, 50);
    };
    const ORDERS = ["newest", "oldest"];
    const sorts = ORDERS.map((o) => btn(t[o], () => o != order && (setOrder(o), load(true))));
    bar.append(...sorts);
    const setOrder = (o) => {
      order = o;
      sorts.forEach((b, i) => b.setAttribute("aria-pressed", ORDERS[i] == o));
    };

    const form = h("form", "cw-form", null, { part: "form", novalidate: "", "aria-labelledby": "cw-ft" });
    const title = h("h3", "", t.heading, { id: "cw-ft" });
    const cancelReply = btn(t.cancelReply, () => endReply(true));
    cancelReply.hidden = true;
    const grid = h("div", "cw-grid");
    form.append(h("div", "cw-fhead", null, null, title, cancelReply), grid);
    const inputs = {}, errs = {};
    for (const [f, key, type, auto] of FIELDS) {
      const id = "cw-" + f, desc = [];
      const label = h("label", "", t[key], { for: id });
      const input = type ? h("input", "", null, { type, autocomplete: auto, spellcheck: "false" })
        : h("textarea", "", null, { rows: 5 });
      Object.assign(input, { id, name: f, required: f != "author_url" });
      const box = h("div", "cw-field", null, null, label, input);
      if (f == "author_url") label.append(" ", h("span", "cw-hint", "(" + t.optional + ")"));
      if (f == "author_email") {
        box.append(h("p", "cw-hint", t.emailHint, { id: id + "-hint" }));
        desc.push(id + "-hint");
      }
      const err = h("p", "cw-err", null, { id: id + "-err" });
      err.hidden = true;
      desc.push(err.id);
      input.setAttribute("aria-describedby", desc.join(" "));
      input.oninput = () => err.hidden || setErr(f, "");
      box.append(err);
      (type ? grid : form).append(box);
      inputs[f] = input;
      errs[f] = err;
    }
    // The honeypot, hidden from people and assistive technology: filled in, it is spam.
    const trap = h("input", "", null, { name: "website", id: "cw-website", tabindex: "-1", autocomplete: "off" });
    const notify = h("input", "", null, { type: "checkbox" });
    const submit = h("button", "cw-btn cw-primary", t.submit, { type: "submit", part: "button" });
    const msg = h("p", "cw-msg");
    msg.hidden = true;
    form.append(
      h("div", "cw-hp", null, { "aria-hidden": "true" }, h("label", "", "Leave this empty", { for: trap.id }), trap),
      msg,
      // The box after the button: Tab goes from the text to the button.
      h("div", "cw-actions", null, null, submit, h("label", "cw-check", null, null, notify, t.notify)),
      h("p", "cw-notice", t.notice + (/[。！？]$/.test(t.notice) ? "" : " "), null, h("a", "", t.noticeLink, { href: privacy })),
    );
    slot.append(form);
    inputs.body.onkeydown = (e) => {
      if (e.key == "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
    };

    function setErr(f, text) {
      errs[f].textContent = text;
      errs[f].hidden = !text;
      text ? inputs[f].setAttribute("aria-invalid", "true") : inputs[f].removeAttribute("aria-invalid");
    }
    function message(text, bad) {
      msg.textContent = text || "";
      msg.hidden = !text;
      msg.classList.toggle("cw-bad", !!bad);
      if (text) say(text);
    }
    let busy = false, idem, idemFor;
    function lock(on, label) {
      busy = on;
      submit.setAttribute("aria-disabled", on);
      submit.textContent = label || (on ? t.sending : t.submit);
    }

    // The form token shows the form was there a few seconds before it is sent.
    let token = null, tokenAt = 0, tokenMin = 0, tokenTtl = 0;
    async function getToken() {
      try {
        const r = await api(path + "form-token/");
        if (r.ok) {
          const d = await json(r);
          [token, tokenAt, tokenMin, tokenTtl] = [d.form_token, Date.now(), (d.min_submit_seconds || 0) * 1e3, (d.expires_in || 0) * 1e3];
        }
      } catch (e) { /* the server says if it needs one */ }
    }

    let parentId = null, replyBtn = null, closed = false;
    function startReply(c, li, b) {
      if (closed) return;
      parentId = c.id;
      replyBtn = b;
      title.textContent = fmt(t.replying, { name: c.author_name });
      cancelReply.hidden = false;
      message("");
      li.firstChild.after(form);
      inputs.body.focus();
    }
    function endReply(focus) {
      parentId = null;
      title.textContent = t.heading;
      cancelReply.hidden = true;
      slot.append(form);
      if (focus && replyBtn && replyBtn.isConnected) replyBtn.focus();
      replyBtn = null;
    }

    form.onsubmit = async (ev) => {
      ev.preventDefault();
      if (busy) return;
      const data = {};
      let bad = null;
      for (const [f] of FIELDS) {
        const v = (data[f] = inputs[f].value.trim());
        const k = check(f, v);
        setErr(f, k && why(f, v, k));
        bad = bad || (k && f);
      }
      if (bad) {
        message(t.eFix, true);
        return inputs[bad].focus();
      }
      if (!data.author_url) delete data.author_url;
      if (parentId) data.parent = parentId;
      if (trap.value) data.website = trap.value;
      // One Idempotency-Key per comment, reused when it is retried.
      const sig = JSON.stringify(data);
      if (notify.checked) data.notify_replies = true;
      if (sig != idemFor) [idem, idemFor] = [crypto.randomUUID ? crypto.randomUUID() : [...crypto.getRandomValues(new Uint8Array(16))].join("-"), sig];
      lock(true);
      message("");
      let r, d;
      for (let tries = 0; tries < 2; tries++) {
        if (tries || !token || (tokenTtl && Date.now() - tokenAt > tokenTtl - 6e4)) await getToken();
        await sleep(tokenAt + tokenMin + 250 - Date.now());
        if (token) data.form_token = token;
        try {
          r = await api(path + "comments/", { method: "POST", headers: { "Idempotency-Key": idem }, body: JSON.stringify(data) });
        } catch (e) {
          lock(false);
          return message(t.eNet, true);
        }
        d = await json(r);
        if (!(r.status == 400 && d.form_token)) break;
      }
      const s = r.status;
      if (s == 202 || s == 201) {
        idemFor = null;
        lock(false);
        const rec = { id: d.id, t: d.edit_token, e: d.edit_expires_at, b: data.body, at: Date.now(), data: d };
        own.set(rec.id, rec);
        keep();
        inputs.body.value = "";
        if (parentId) endReply();
        place(rec).firstChild.focus();
        message(t.thanks);
        return poll(rec, 1e3);
      }
      if (s == 429) {
        const wait = Math.min(Math.max(parseInt(r.headers.get("Retry-After"), 10) || 10, 1), 120);
        message(fmt(t.eBusy, { s: wait }), true);
        lock(true, t.submit);
        return setTimeout(() => lock(false), wait * 1e3);
      }
      lock(false);
      if (s == 400) {
        const rest = [];
        let first = null;
        for (const k in d) {
          const text = [].concat(d[k]).join(" ");
          if (inputs[k]) {
            setErr(k, text);
            first = first || k;
          } else rest.push(k == "parent" ? t.eParent : text);
        }
        message(rest.join(" ") || t.eFix, true);
        return first && inputs[first].focus();
      }
      if (s == 413) {
        setErr("body", why("body", data.body, "eLong"));
        return inputs.body.focus();
      }
      message(s == 403 ? t.eClosed : s == 404 ? t.eMissing : s == 409 ? t.eDup : t.eServer, true);
    };

    const nodes = new Map();
    const own = new Map(); // id -> {id, t: edit token, e: its expiry, b: body, at, data}
    for (const x of stored(KEY)) if (x && x.id && x.t) own.set(x.id, { ...x, at: x.at || Date.now() });
    const keep = () => store(KEY, [...own.values()].slice(-20).map((x) => ({ id: x.id, t: x.t, e: x.e, b: x.b, at: x.at })));
    let count = 0, cursor = null, gen = 0, ownLoaded = false;

    function setCount(n) {
      count = Math.max(0, n);
      heading.textContent = count == 0 ? t.first : count == 1 ? t.one : fmt(t.many, { n: num(count) });
    }
    const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
    function ago(iso) {
      const s = Math.min(0, (Date.parse(iso) - Date.now()) / 1e3), a = -s;
      if (a < 45) return rtf.format(0, "second");
      if (a < 2700) return rtf.format(Math.round(s / 60), "minute");
      if (a < 79200) return rtf.format(Math.round(s / 3600), "hour");
      if (a < 2246400) return rtf.format(Math.round(s / 86400), "day");
      return new Date(iso).toLocaleDateString(lang, { dateStyle: "medium" });
    }
    const exact = (iso) => new Date(iso).toLocaleString(lang, { dateStyle: "full", timeStyle: "short" });
    setInterval(() => root.querySelectorAll("time").forEach((e) => { e.textContent = ago(e.dateTime); }), 6e4);

    function repliesOf(li) {
      return li.querySelector(":scope > .cw-replies") || li.appendChild(h("ol", "cw-replies"));
    }

    function render(c, fromList) {
      const rec = own.get(c.id);
      if (rec && fromList) rec.data = { ...rec.data, ...c, replies: [], status: c.removed ? "removed" : "published" };
      const d = rec ? rec.data : c, status = d.status || "published";
      const art = h("article", "cw-art", null, { tabindex: "-1" });
      const li = h("li", "cw-c" + (rec ? " cw-own cw-" + status : ""), null, { id: "c" + c.id }, art);
      nodes.set(c.id, li);
      if (rec) rec.li = li;
      if (d.removed) art.append(h("p", "cw-removed", t.removed));
      else {
        const url = httpUrl(d.author_url || "");
        const who = h(url ? "a" : "span", "cw-author", d.author_name, url ? { href: url, rel: REL } : null);
        const when = h("time", "", ago(d.created_at), { datetime: d.created_at, title: exact(d.created_at) });
        const meta = h("header", "cw-meta", null, null, who, when);
        if (d.edited_at) meta.append(h("span", "cw-edited", "(" + t.edited + ")", { title: exact(d.edited_at) }));
        art.append(meta, rec && rec.editing ? editor(rec) : h("div", "cw-body", null, null, safeHtml(d.body_html)));
        if (status == "published" && !(rec && (rec.editing || rec.confirm))) {
          const b = btn(t.reply, () => startReply(d, li, b), "cw-small cw-reply", { "aria-label": fmt(t.replyTo, { name: d.author_name }) });
          art.append(h("div", "cw-tools", null, null, b));
        }
        if (rec) ownBox(rec, art, status);
      }
      if (fromList && c.replies && c.replies.length) {
        const ol = repliesOf(li);
        c.replies.forEach((r) => ol.append(render(r, true)));
      }
      return li;
    }

    function ownBox(rec, art, status) {
      const refused = status == "spam" || status == "rejected";
      const box = h("div", "cw-ownbox"), tools = h("div", "cw-tools");
      if (status == "pending" || status == "held") {
        const held = status == "held";
        box.append(h("p", "cw-badge", held ? t.held : t.pending), h("p", "cw-note", held ? rec.data.review_note || t.heldNote : t.pendingNote));
      } else if (refused) box.append(h("p", "cw-badge cw-badbadge", t.refused), h("p", "cw-note", t.refusedNote));
      else if (open(rec)) box.append(h("p", "cw-note", t.yours));
      if (rec.confirm) {
        box.append(h("p", "cw-note", t.confirmDel));
        tools.append(btn(t.confirmYes, () => remove(rec), "cw-small cw-danger"),
          btn(t.cancel, () => { rec.confirm = false; rec.err = ""; rerender(rec, "[data-act=del]"); }));
      } else if (open(rec) && !rec.editing) {
        const until = new Date(rec.e).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
        box.append(h("p", "cw-note", fmt(t.editUntil, { time: until })));
        if (!refused) tools.append(btn(t.edit, () => { rec.editing = true; rerender(rec, "textarea"); }, 0, { "data-act": "edit" }));
        tools.append(btn(t.del, () => { rec.confirm = true; rerender(rec, ".cw-danger"); }, 0, { "data-act": "del" }));
        clearTimeout(rec.closer);
        rec.closer = setTimeout(() => rec.editing || rec.confirm || rerender(rec), Math.min(Date.parse(rec.e) - Date.now() + 500, 2e9));
      }
      if (refused && !rec.confirm) tools.append(btn(t.dismiss, () => { forget(rec); rec.li.remove(); heading.focus(); }));
      if (rec.err) box.append(h("p", "cw-err", rec.err));
      if (tools.firstChild) box.append(tools);
      if (box.firstChild) art.append(box);
    }

    function editor(rec) {
      const id = "cw-e" + rec.id;
      const ta = h("textarea", "", null, { id, rows: 5, "aria-describedby": id + "x" });
      ta.value = rec.b || safeHtml(rec.data.body_html).textContent;
      const err = h("p", "cw-err", null, { id: id + "x" });
      err.hidden = true;
      const bad = (text) => {
        err.textContent = text;
        err.hidden = false;
        ta.setAttribute("aria-invalid", "true");
        say(text);
        ta.focus();
      };
      const save = h("button", "cw-btn cw-primary cw-small", t.save, { type: "submit" });
      const cancel = btn(t.cancel, () => { rec.editing = false; rerender(rec, "[data-act=edit]"); });
      const f = h("form", "cw-edit", null, { novalidate: "" }, h("label", "", t.body, { for: id }), ta, err,
        h("div", "cw-tools", null, null, save, cancel));
      f.onsubmit = async (ev) => {
        ev.preventDefault();
        const v = ta.value.trim(), k = check("body", v);
        if (save.getAttribute("aria-disabled")) return;
        if (k) return bad(why("body", v, k));
        save.setAttribute("aria-disabled", "true");
        let r;
        try {
          r = await mine(rec, "PATCH", { body: v });
        } catch (e) { /* r stays empty */ }
        save.removeAttribute("aria-disabled");
        if (!r) return bad(t.eNet);
        const d = await json(r);
        if (r.ok) {
          if (rec.data.status == "published" && d.status != "published") setCount(count - 1);
          rec.data = { ...rec.data, ...d, replies: [] };
          Object.assign(rec, { b: v, editing: false, n: 0 });
          keep();
          rerender(rec, "article");
          say(t.saved);
          poll(rec, 1e3);
        } else if (r.status == 403 || r.status == 404) {
          Object.assign(rec, { e: EPOCH, editing: false });
          rerender(rec, "article");
          say(t.eGone);
        } else bad(r.status == 400 ? [].concat(d.body || d.detail || t.eServer).join(" ") : r.status == 429 ? fmt(t.eBusy, { s: 10 }) : t.eServer);
      };
      return f;
    }

    function rerender(rec, sel) {
      if (!rec.li || !rec.li.isConnected) return;
      const had = rec.li.contains(shadow.activeElement);
      place(rec);
      if (sel || had) (rec.li.querySelector(sel || "article") || rec.li.firstChild).focus();
    }

    function place(rec) {
      const old = nodes.get(rec.id);
      const li = render(rec.data);
      if (old && old.isConnected) {
        const reps = old.querySelector(":scope > .cw-replies");
        if (reps) li.append(reps);
        if (form.parentNode == old) li.firstChild.after(form);
        old.replaceWith(li);
      } else {
        const p = nodes.get(rec.data.parent);
        p && p.isConnected ? repliesOf(p).append(li) : list.prepend(li);
      }
      return li;
    }

    async function remove(rec) {
      rec.err = "";
      let r;
      try {
        r = await mine(rec, "DELETE");
      } catch (e) {
        rec.err = t.eNet;
        say(t.eNet);
        return rerender(rec, ".cw-danger");
      }
      if (r.status == 204 || r.status == 404) {
        if (rec.data.status == "published") setCount(count - 1);
        forget(rec);
        const reps = rec.li.querySelector(":scope > .cw-replies");
        if (reps && reps.children.length) rec.li.firstChild.replaceChildren(h("p", "cw-removed", t.removed));
        else rec.li.remove();
        say(t.deleted);
        heading.focus();
      } else {
        Object.assign(rec, { confirm: false, e: EPOCH, err: r.status == 403 ? t.eGone : t.eServer });
        say(rec.err);
        rerender(rec, "article");
      }
    }

    function forget(rec) {
      clearTimeout(rec.timer);
      clearTimeout(rec.closer);
      own.delete(rec.id);
      keep();
    }
    function poll(rec, delay) {
      clearTimeout(rec.timer);
      rec.timer = setTimeout(() => refresh(rec), delay);
    }
    async function refresh(rec, first) {
      let r;
      try {
        r = await mine(rec);
      } catch (e) {
        return poll(rec, 15e3);
      }
      if (r.status == 404) {
        forget(rec);
        if (rec.li && (!rec.data || rec.data.status != "published")) rec.li.remove();
        return;
      }
      if (!r.ok) return poll(rec, 15e3);
      const d = await json(r), was = rec.data && rec.data.status, s = d.status;
      const changed = !rec.data || was != s || rec.data.review_note != d.review_note || rec.data.edited_at != d.edited_at;
      rec.data = { ...rec.data, ...d, replies: [] };
      const done = s == "removed" || (s == "published" && !open(rec)) ||
        ((s == "spam" || s == "rejected") && Date.now() - rec.at > KEEP);
      if (done) forget(rec);
      if (first) {
        if (done && !(rec.li && rec.li.isConnected)) return;
      } else if (was != s) {
        if (s == "published") { setCount(count + 1); say(t.publishedNow); }
        if (was == "published") setCount(count - 1);
        if (s == "held") say(t.held + ". " + (d.review_note || t.heldNote));
        if (s == "spam" || s == "rejected") say(t.refusedNote);
      }
      if (changed && !rec.editing && !rec.confirm) {
        const had = rec.li && rec.li.isConnected && rec.li.contains(shadow.activeElement);
        place(rec);
        if (had) rec.li.firstChild.focus();
      }
      if (s == "pending") poll(rec, Math.min(1e3 * 1.4 ** (rec.n = (rec.n || 0) + 1), 15e3));
      else if (s == "held") poll(rec, 6e4);
    }

    async function load(reset, fromButton) {
      const g = ++gen;
      if (reset) {
        if (parentId) endReply();
        cursor = null;
        list.replaceChildren();
        nodes.clear();
        state.textContent = t.loading;
        state.hidden = false;
        more.hidden = true;
      } else {
        more.setAttribute("aria-disabled", "true");
        more.textContent = t.loading;
      }
      const q = new URLSearchParams({ limit: size, order });
      if (cursor) q.set("cursor", cursor);
      let r, d;
      try {
        r = await api(path + "comments/?" + q);
        d = r.ok && (await r.json());
      } catch (e) { /* d stays empty */ }
      if (g != gen) return;
      more.removeAttribute("aria-disabled");
      more.textContent = t.more;
      if (!d) {
        if (r && r.status == 404) return missing();
        const again = btn(t.retry, () => load(reset, true));
        state.replaceChildren(t.eLoad + " ", again);
        state.hidden = false;
        say(t.eLoad);
        return fromButton && again.focus();
      }
      state.hidden = true;
      setCount(d.count || 0);
      const added = [];
      for (const c of d.results || []) {
        const old = nodes.get(c.id);
        if (old && old.contains(form)) endReply();
        if (old) old.remove();
        added.push(list.appendChild(render(c, true)));
      }
      cursor = d.next ? new URL(d.next, API).searchParams.get("cursor") : null;
      more.hidden = !cursor;
      bar.hidden = count < 2 && !cursor;
      if (!ownLoaded) {
        ownLoaded = true;
        await Promise.all([...own.values()].map((x) => refresh(x, true)));
      }
      for (const x of own.values()) {
        const s = x.data && x.data.status;
        if (s && s != "removed" && !(x.li && x.li.isConnected) && (s != "published" || open(x))) place(x);
      }
      if (fromButton) {
        say(fmt(t.loaded, { n: added.length }));
        if (added[0]) added[0].firstChild.focus();
      }
    }

    function missing() {
      heading.textContent = t.title;
      root.replaceChildren(heading, live, h("p", "cw-state", t.eMissing));
    }

    setOrder(order);
    if (!slug) return missing();
    load(true);
    getToken();
    api(path).then(json).then((a) => {
      if (a.comments_open !== false) return;
      closed = true;
      root.classList.add("cw--closed");
      if (parentId) endReply();
      form.replaceWith(h("p", "cw-state", t.eClosed));
    }).catch(() => {});
  }

  const start = () => document.querySelectorAll("[data-comments-article], [data-comments-url]").forEach(mount);
  window.commentsWidget = { mount, start };
  document.readyState == "loading" ? document.addEventListener("DOMContentLoaded", start) : start();
})();
