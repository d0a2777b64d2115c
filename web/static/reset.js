// Password reset: without a token, ask for a link (it goes to the owner's Telegram chat with
// the sales bot); with /reset#token=... (a fragment: it never reaches a server or a log), set
// the new password, which logs in and ends every other session.
(function () {
  "use strict";
  var status = document.getElementById("status");
  var token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  window.history.replaceState(null, "", window.location.pathname);

  function post(path, payload) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error((body.error && body.error.message) || r.statusText); }
        return body;
      });
    });
  }

  var form = document.getElementById(token ? "set" : "ask");
  form.hidden = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    status.textContent = "";
    var fields = new FormData(form);
    var done = token
      ? post("/api/auth/reset/confirm", { token: token, password: fields.get("password") })
          .then(function (tokens) {
            sessionStorage.setItem("botfleet.access", tokens.access_token);
            localStorage.setItem("botfleet.refresh", tokens.refresh_token);
            window.location.replace("/dashboard");
          })
      : post("/api/auth/reset", { email: fields.get("email") })
          .then(function () { status.textContent = "Если такой аккаунт есть, ссылка уже в Telegram."; });
    done.catch(function (err) { status.textContent = err.message; });
  });
})();
