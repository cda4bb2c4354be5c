/* The export/erase request form on /privacy/: sends {email, action} as JSON to
   the form's data-endpoint and says what happens next. A same-origin file,
   so the page's Content-Security-Policy (script-src 'self') allows it. */
(function () {
  "use strict";
  const form = document.getElementById("personal-data-form");
  if (!form || !window.fetch) return;
  const endpoint = form.getAttribute("data-endpoint") || form.getAttribute("action");
  const email = form.querySelector("input[name=email]");
  const button = form.querySelector("button[type=submit]");
  const status = form.querySelector("[data-status]");
  const say = (text, error) => {
    status.textContent = text;
    status.setAttribute("data-state", error ? "error" : "ok");
  };
  const firstError = (data) => {
    for (const key of ["email", "action", "detail"]) {
      const value = data && data[key];
      if (value) return Array.isArray(value) ? value[0] : String(value);
    }
    return "";
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const address = email.value.trim();
    if (!address || !email.checkValidity()) {
      say("Please enter the email address you used for your comments.", true);
      email.focus();
      return;
    }
    const chosen = form.querySelector("input[name=action]:checked");
    const action = chosen ? chosen.value : "export";
    button.disabled = true;
    say("Sending…");
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ email: address, action }),
        credentials: "omit",
      });
      if (response.status === 202 || response.ok) {
        say(
          "Thank you. If we hold comments from " + address + ", a link is on its way there. " +
            "Follow it to " + (action === "erase" ? "erase your data" : "get your copy") + "."
        );
        form.reset();
      } else if (response.status === 429) {
        say("Too many requests just now; please try again later.", true);
      } else {
        let data = null;
        try { data = await response.json(); } catch (e) { /* not JSON */ }
        say(firstError(data) || "The request could not be sent; please try again later.", true);
      }
    } catch (e) {
      say("The request could not be sent (no connection?); please try again.", true);
    } finally {
      button.disabled = false;
    }
  });
})();
