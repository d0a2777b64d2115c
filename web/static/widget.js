/* botfleet website chat widget.
 *
 *   <script src="https://<web>/widget.js" data-bot="<public widget key>" async></script>
 *
 * Visitors chat with the business's AI assistant (the same as in its Telegram bot). A visitor
 * id is made once and kept in this site's localStorage, with the last messages, so the
 * conversation survives page loads. Everything shown is set as text (never as HTML), inside a
 * shadow root so the site's styles and the widget's do not meet. While the chat is open it asks
 * every few seconds whether a person (the business's owner or admin) wrote to the visitor.
 */
(function () {
  "use strict";
  var script = document.currentScript ||
    document.querySelector('script[data-bot][src*="widget.js"]');
  if (!script) { return; }
  var key = script.getAttribute("data-bot") || "";
  if (!/^w_[A-Za-z0-9_-]{16,64}$/.test(key)) {
    console.error("botfleet widget: data-bot must be the widget key (w_...)");
    return;
  }
  var base = new URL(script.src, window.location.href).origin;
  var store = "botfleet.widget." + key + ".";
  var lang = (document.documentElement.lang || navigator.language || "ru").slice(0, 2);
  var t = lang === "en"
    ? { open: "Chat", title: "Ask us", placeholder: "Your question…", send: "Send",
        offline: "No connection, please try again." }
    : { open: "Чат", title: "Задайте вопрос", placeholder: "Ваш вопрос…", send: "Отправить",
        offline: "Нет связи, попробуйте ещё раз." };

  function visitorId() {
    var id = localStorage.getItem(store + "visitor");
    if (!id || !/^[A-Za-z0-9_-]{8,64}$/.test(id)) {
      var bytes = new Uint8Array(16);
      crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
      localStorage.setItem(store + "visitor", id);
    }
    return id;
  }

  function history() {
    try { return JSON.parse(localStorage.getItem(store + "history") || "[]"); }
    catch (e) { return []; }
  }

  function remember(role, text) {
    var h = history();
    h.push({ role: role, text: text });
    localStorage.setItem(store + "history", JSON.stringify(h.slice(-50)));
  }

  var host = document.createElement("div");
  host.id = "botfleet-widget";
  var root = host.attachShadow({ mode: "open" });
  var style = document.createElement("style");
  style.textContent =
    ".btn{position:fixed;right:20px;bottom:20px;z-index:2147483000;padding:12px 18px;" +
    "border:0;border-radius:24px;background:#2b6cb0;color:#fff;font:15px sans-serif;cursor:pointer}" +
    ".panel{position:fixed;right:20px;bottom:72px;z-index:2147483000;width:320px;max-height:460px;" +
    "display:flex;flex-direction:column;background:#fff;border:1px solid #ccd;border-radius:12px;" +
    "box-shadow:0 4px 24px rgba(0,0,0,.15);font:14px sans-serif}" +
    ".panel[hidden]{display:none}.head{padding:10px 14px;font-weight:bold;border-bottom:1px solid #eee}" +
    ".log{flex:1;overflow-y:auto;padding:10px 14px;min-height:160px}" +
    ".msg{margin:6px 0;padding:8px 10px;border-radius:10px;white-space:pre-wrap;max-width:85%}" +
    ".user{background:#e2ecf8;margin-left:auto}.assistant{background:#f1f1f1}.note{color:#a33}" +
    ".staff{background:#e6f4ea}" +
    "form{display:flex;border-top:1px solid #eee}input{flex:1;border:0;padding:10px;font:inherit}" +
    "form button{border:0;background:none;color:#2b6cb0;padding:0 12px;cursor:pointer}";
  var button = document.createElement("button");
  button.className = "btn";
  button.type = "button";
  button.textContent = t.open;
  var panel = document.createElement("div");
  panel.className = "panel";
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  var head = document.createElement("div");
  head.className = "head";
  head.textContent = t.title;
  var log = document.createElement("div");
  log.className = "log";
  log.setAttribute("aria-live", "polite");
  var form = document.createElement("form");
  var input = document.createElement("input");
  input.name = "text";
  input.maxLength = 2000;
  input.placeholder = t.placeholder;
  input.autocomplete = "off";
  var send = document.createElement("button");
  send.type = "submit";
  send.textContent = t.send;
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);
  root.appendChild(style);
  root.appendChild(button);
  root.appendChild(panel);

  function show(role, text) {
    var div = document.createElement("div");
    div.className = "msg " + role;
    div.textContent = text;
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
  }

  history().forEach(function (m) { show(m.role, m.text); });

  // A person's answers to this visitor, after the last one shown (kept with the history).
  var POLL_MS = 5000;
  function poll() {
    var after = Number(localStorage.getItem(store + "after") || "0");
    var url = base + "/api/widget/" + encodeURIComponent(key) + "/messages?visitor_id=" +
      encodeURIComponent(visitorId()) + "&after=" + after;
    return fetch(url)
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body) { return; }
        body.items.forEach(function (m) {
          show("staff", "👤 " + m.text);
          remember("staff", "👤 " + m.text);
          localStorage.setItem(store + "after", String(m.id));
        });
      })
      .catch(function () { /* offline: the next round asks again */ });
  }
  setInterval(function () {
    if (!panel.hidden && document.visibilityState === "visible") { poll(); }
  }, POLL_MS);

  button.addEventListener("click", function () {
    panel.hidden = !panel.hidden;
    if (!panel.hidden) { input.focus(); poll(); }
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    show("user", text);
    remember("user", text);
    send.disabled = true;
    fetch(base + "/api/widget/" + encodeURIComponent(key) + "/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ visitor_id: visitorId(), text: text }),
    })
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (res.ok) {
          show("assistant", res.body.reply);
          remember("assistant", res.body.reply);
          if (res.body.outcome === "relayed") { poll(); }
        } else {
          show("note", (res.body.error && res.body.error.message) || t.offline);
        }
      })
      .catch(function () { show("note", t.offline); })
      .then(function () { send.disabled = false; });
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
