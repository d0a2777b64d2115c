// A one-time login link: the token travels in the URL fragment-free query, and is spent by a
// POST from this page (a link preview that only GETs the page does not use it up).
(function () {
  "use strict";
  var status = document.getElementById("status");
  var params = new URLSearchParams(window.location.search);
  var token = params.get("token");
  // A bot's /admin link names the bot: its token is checked in that bot's own data.
  var bot = params.get("bot");
  // Drop the token from the address bar and history at once.
  window.history.replaceState(null, "", window.location.pathname);
  if (!token) {
    status.textContent = "Ссылка без токена: попросите новую в боте.";
    return;
  }
  fetch(bot ? "/api/auth/bot-link" : "/api/auth/link", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(bot ? { tenant_id: bot, token: token } : { token: token }),
  })
    .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
    .then(function (res) {
      if (!res.ok) {
        status.textContent = (res.body.error && res.body.error.message) || "Не удалось войти.";
        return;
      }
      sessionStorage.setItem("botfleet.access", res.body.access_token);
      localStorage.setItem("botfleet.refresh", res.body.refresh_token);
      status.textContent = "Вы вошли.";
      window.location.replace("/dashboard");
    })
    .catch(function () { status.textContent = "Сеть недоступна, попробуйте ещё раз."; });
})();
