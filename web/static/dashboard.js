// The owner's dashboard: logs in with the OAuth2 password form (or arrives from a login link),
// then reads the API with the bearer token. Tokens: the access token in sessionStorage, the
// refresh token in localStorage (a 401 spends it once for a new pair). Everything shown is set
// as text, never as HTML.
(function () {
  "use strict";
  var lang = new URLSearchParams(window.location.search).get("lang") === "en" ? "en" : "ru";
  var EN = {
    logout: "Log out", login_title: "Log in", email: "Email", password: "Password", login: "Log in",
    bots: "Your bots", leads: "Leads", status: "Status", all: "all", "new": "new",
    in_work: "in work", won: "won", lost: "lost", col_bot: "Bot", col_name: "Name",
    col_phone: "Phone", col_interest: "Interest", col_status: "Status", col_when: "When",
    no_leads: "No leads.", no_bots: "No bots yet.", snippet: "Website chat widget:",
  };
  var RU = {
    "new": "новая", in_work: "в работе", won: "успешная", lost: "отказ",
    no_bots: "Ботов пока нет.", snippet: "Чат-виджет для сайта:",
  };
  function t(key, fallback) {
    return (lang === "en" ? EN[key] : RU[key]) || fallback || key;
  }
  if (lang === "en") {
    document.documentElement.lang = "en";
    document.querySelectorAll("[data-t]").forEach(function (el) {
      el.textContent = t(el.getAttribute("data-t"), el.textContent);
    });
  }

  var $ = function (id) { return document.getElementById(id); };
  var access = function () { return sessionStorage.getItem("botfleet.access"); };

  function store(tokens) {
    sessionStorage.setItem("botfleet.access", tokens.access_token);
    localStorage.setItem("botfleet.refresh", tokens.refresh_token);
  }

  function forget() {
    sessionStorage.removeItem("botfleet.access");
    localStorage.removeItem("botfleet.refresh");
  }

  function refresh() {
    var token = localStorage.getItem("botfleet.refresh");
    if (!token) { return Promise.resolve(false); }
    return fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: token }),
    }).then(function (r) {
      if (!r.ok) { forget(); return false; }
      return r.json().then(function (tokens) { store(tokens); return true; });
    });
  }

  function api(path, retried, method, payload) {
    var init = { method: method || "GET", headers: { Authorization: "Bearer " + access() } };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    return fetch(path, init).then(function (r) {
      if (r.status === 401 && !retried) {
        return refresh().then(function (ok) {
          if (ok) { return api(path, true, method, payload); }
          showLogin();
          throw new Error("logged out");
        });
      }
      return r.json().then(function (body) {
        if (!r.ok) { throw new Error((body.error && body.error.message) || r.statusText); }
        return body;
      });
    });
  }

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  var STATUSES = ["new", "in_work", "won", "lost"];

  // The lead's status as a choice: a change is saved at once (PATCH), as in /admin → Leads.
  function statusCell(lead) {
    var td = document.createElement("td");
    var select = document.createElement("select");
    select.className = "lead-status";
    select.setAttribute("aria-label", lead.name);
    STATUSES.forEach(function (status) {
      var option = document.createElement("option");
      option.value = status;
      option.textContent = t(status, status);
      option.selected = status === lead.status;
      select.appendChild(option);
    });
    select.addEventListener("change", function () {
      select.disabled = true;
      var path = "/api/tenants/" + encodeURIComponent(lead.tenant_id) + "/leads/" + lead.id;
      api(path, false, "PATCH", { status: select.value })
        .then(function (saved) { select.value = saved.status; select.dataset.saved = saved.status; })
        .catch(function (err) { select.value = lead.status; alert(err.message); })
        .then(function () { select.disabled = false; });
    });
    td.appendChild(select);
    return td;
  }

  function loadLeads() {
    var status = $("status").value;
    return api("/api/leads?limit=200" + (status ? "&status=" + encodeURIComponent(status) : ""))
      .then(function (page) {
        var body = $("leads").querySelector("tbody");
        body.textContent = "";
        page.items.forEach(function (lead) {
          var row = document.createElement("tr");
          cell(row, lead.tenant_id);
          cell(row, lead.name);
          cell(row, lead.phone);
          cell(row, lead.interest);
          row.appendChild(statusCell(lead));
          cell(row, new Date(lead.created_at).toLocaleString(lang));
          body.appendChild(row);
        });
        $("empty").hidden = page.items.length > 0;
      });
  }

  function loadBots(me) {
    var list = $("bots");
    list.textContent = "";
    if (!me.tenants.length) {
      var none = document.createElement("li");
      none.textContent = t("no_bots");
      list.appendChild(none);
    }
    me.tenants.forEach(function (bot) {
      var item = document.createElement("li");
      item.textContent = bot.business_name + " (" + (bot.bot_username ? "@" + bot.bot_username : bot.tenant_id) +
        ", " + bot.status + ")";
      list.appendChild(item);
      api("/api/tenants/" + encodeURIComponent(bot.tenant_id) + "/widget").then(function (w) {
        var label = document.createElement("div");
        label.textContent = t("snippet");
        var code = document.createElement("code");
        code.className = "snippet";
        code.textContent = w.snippet;
        item.appendChild(label);
        item.appendChild(code);
      });
    });
  }

  function showPanel() {
    return api("/api/auth/me").then(function (me) {
      $("login").hidden = true;
      $("panel").hidden = false;
      $("logout").hidden = false;
      $("who").textContent = me.company_name || me.email || "";
      loadBots(me);
      return loadLeads();
    });
  }

  function showLogin() {
    $("panel").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    $("login").hidden = false;
  }

  $("login").addEventListener("submit", function (event) {
    event.preventDefault();
    $("login-error").textContent = "";
    fetch("/api/auth/login", { method: "POST", body: new URLSearchParams(new FormData(event.target)) })
      .then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error((body.error && body.error.message) || r.statusText); }
          store(body);
          return showPanel();
        });
      })
      .catch(function (err) { $("login-error").textContent = err.message; });
  });

  $("status").addEventListener("change", loadLeads);
  $("logout").addEventListener("click", function () {
    fetch("/api/auth/logout", { method: "POST", headers: { Authorization: "Bearer " + access() } })
      .then(function () { forget(); showLogin(); });
  });

  if (access() || localStorage.getItem("botfleet.refresh")) {
    showPanel().catch(showLogin);
  } else {
    showLogin();
  }
})();
