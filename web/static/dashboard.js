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
    bot: "Bot", bookings: "Bookings", one_day: "day", one_week: "week", col_service: "Service",
    no_bookings: "No bookings.", customers: "Customers", col_seen: "Last seen",
    conversations: "Conversations with the assistant", services: "Services", col_price: "Price, ₽",
    col_duration: "Minutes", col_hidden: "Hidden", add: "Add", service_name: "Name",
    price: "Price", minutes: "Minutes", cancel: "Cancel", done: "Done", no_show: "No-show",
    st_confirmed: "confirmed", st_cancelled: "cancelled", st_done: "came", st_no_show: "did not come",
    cancel_note: "Why? (the note is kept)",
    save: "Save", staff_says: "Staff", you: "Customer", assistant: "Assistant",
    account: "Password login", current_password: "Current password", new_password: "New password",
    only_bot: "You came from one bot's /admin and see that bot only. Set a password after logging"
      + " in with the sales bot's link or your password.",
    password_saved: "Saved: log in with your email and this password from now on.",
  };
  var RU = {
    "new": "новая", in_work: "в работе", won: "успешная", lost: "отказ",
    no_bots: "Ботов пока нет.", snippet: "Чат-виджет для сайта:",
    cancel: "Отменить", done: "Пришёл", no_show: "Не пришёл", st_confirmed: "подтверждена",
    st_cancelled: "отменена", st_done: "пришёл", st_no_show: "не пришёл", cancel_note: "Причина? (сохранится в записи)", save: "Сохранить",
    staff_says: "Сотрудник", you: "Клиент", assistant: "Ассистент",
    password_saved: "Сохранено: теперь входите по email и этому паролю.",
  };
  function t(key, fallback) {
    return (lang === "en" ? EN[key] : RU[key]) || fallback || key;
  }
  if (lang === "en") {
    document.documentElement.lang = "en";
    document.querySelectorAll("[data-t]").forEach(function (el) {
      el.textContent = t(el.getAttribute("data-t"), el.textContent);
    });
    document.querySelectorAll("[data-ph]").forEach(function (el) {
      el.placeholder = t(el.getAttribute("data-ph"), el.placeholder);
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

  var leadsAsked = 0;

  function loadLeads() {
    var status = $("status").value;
    var asked = ++leadsAsked;
    return api("/api/leads?limit=200" + (status ? "&status=" + encodeURIComponent(status) : ""))
      .then(function (page) {
        if (asked !== leadsAsked) { return; }
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

  // --- one bot's bookings, customers, conversations and services ---------------------------
  function bot() { return $("bot").value; }
  function botPath(rest) { return "/api/tenants/" + encodeURIComponent(bot()) + rest; }
  function failed(err) { $("data-error").textContent = err.message; }
  function isoDay(date) { return date.toISOString().slice(0, 10); }

  function bookingButton(row, label, action) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.addEventListener("click", action);
    row.appendChild(button);
  }

  var bookingsAsked = 0;  // only the latest request draws (an older answer may come later)

  function loadBookings() {
    if (!bot()) { return Promise.resolve(); }
    var asked = ++bookingsAsked;
    var query = "?day=" + encodeURIComponent($("day").value) + "&days=" + $("span").value + "&limit=500";
    return api(botPath("/bookings" + query)).then(function (page) {
      if (asked !== bookingsAsked) { return; }
      var body = $("bookings").querySelector("tbody");
      body.textContent = "";
      page.items.forEach(function (b) {
        var row = document.createElement("tr");
        row.dataset.id = b.id;
        cell(row, new Date(b.starts_at).toLocaleString(lang, { dateStyle: "short", timeStyle: "short" }));
        cell(row, b.service_name + (b.staff_name ? " · " + b.staff_name : ""));
        cell(row, b.customer_name);
        cell(row, b.phone);
        var status = document.createElement("td");
        status.className = "booking-status";
        status.textContent = t("st_" + b.status, b.status) + (b.cancel_note ? " (" + b.cancel_note + ")" : "");
        row.appendChild(status);
        var actions = document.createElement("td");
        if (b.status !== "cancelled") {
          var mark = function (to) {
            return function () {
              api(botPath("/bookings/" + b.id), false, "PATCH", { status: to }).then(loadBookings, failed);
            };
          };
          if (b.status === "confirmed") {
            bookingButton(actions, t("done", "Пришёл"), mark("done"));
            bookingButton(actions, t("no_show", "Не пришёл"), mark("no_show"));
            bookingButton(actions, t("cancel", "Отменить"), function () {
              var note = window.prompt(t("cancel_note"), "");
              if (note === null) { return; }
              api(botPath("/bookings/" + b.id + "/cancel"), false, "POST", { note: note })
                .then(loadBookings, failed);
            });
          }
        }
        row.appendChild(actions);
        body.appendChild(row);
      });
      $("no-bookings").hidden = page.items.length > 0;
    }, failed);
  }

  function loadCustomers() {
    return api(botPath("/customers?limit=100")).then(function (page) {
      var body = $("customers").querySelector("tbody");
      body.textContent = "";
      page.items.forEach(function (c) {
        var row = document.createElement("tr");
        cell(row, c.first_name + (c.username ? " @" + c.username : ""));
        cell(row, c.phone || "");
        cell(row, new Date(c.last_seen_at).toLocaleString(lang));
        body.appendChild(row);
      });
    }, failed);
  }

  var WHO = { user: "you", assistant: "assistant", staff: "staff_says" };

  function openConversation(id) {
    return api(botPath("/conversations/" + id)).then(function (talk) {
      var box = $("conversation");
      box.textContent = "";
      talk.messages.forEach(function (m) {
        var p = document.createElement("p");
        p.className = m.role;
        p.textContent = t(WHO[m.role], m.role) + ": " + m.content;
        box.appendChild(p);
      });
      box.hidden = false;
    }, failed);
  }

  function loadConversations() {
    return api(botPath("/conversations?limit=50")).then(function (page) {
      var list = $("conversations");
      list.textContent = "";
      $("conversation").hidden = true;
      page.items.forEach(function (c) {
        var item = document.createElement("li");
        var open = document.createElement("button");
        open.type = "button";
        open.className = "link";
        open.textContent = (c.name || String(c.customer_id)) + " (" + c.messages + ")";
        open.addEventListener("click", function () { openConversation(c.customer_id); });
        item.appendChild(open);
        item.appendChild(document.createTextNode(" " + c.last_text));
        list.appendChild(item);
      });
    }, failed);
  }

  function loadServices() {
    return api(botPath("/services")).then(function (services) {
      var body = $("services").querySelector("tbody");
      body.textContent = "";
      services.forEach(function (s) {
        var row = document.createElement("tr");
        row.dataset.id = s.id;
        cell(row, s.name);
        var price = document.createElement("input");
        price.value = s.price;
        price.className = "service-price";
        price.setAttribute("aria-label", s.name);
        var priceCell = document.createElement("td");
        priceCell.appendChild(price);
        row.appendChild(priceCell);
        cell(row, String(s.duration_min));
        var hidden = document.createElement("input");
        hidden.type = "checkbox";
        hidden.checked = s.hidden;
        var hiddenCell = document.createElement("td");
        hiddenCell.appendChild(hidden);
        row.appendChild(hiddenCell);
        var saveCell = document.createElement("td");
        bookingButton(saveCell, t("save", "Сохранить"), function () {
          api(botPath("/services/" + s.id), false, "PATCH", { price: price.value, hidden: hidden.checked })
            .then(function (saved) { row.dataset.saved = saved.price; }, failed);
        });
        row.appendChild(saveCell);
        body.appendChild(row);
      });
    }, failed);
  }

  function loadBotData() {
    $("data-error").textContent = "";
    if (!bot()) { $("bot-data").hidden = true; return Promise.resolve(); }
    $("bot-data").hidden = false;
    return Promise.all([loadBookings(), loadCustomers(), loadConversations(), loadServices()]);
  }

  function shiftDay(delta) {
    var day = new Date($("day").value + "T00:00:00Z");
    day.setUTCDate(day.getUTCDate() + delta * Number($("span").value));
    $("day").value = isoDay(day);
    loadBookings();
  }

  function showPanel() {
    return api("/api/auth/me").then(function (me) {
      $("login").hidden = true;
      $("panel").hidden = false;
      $("logout").hidden = false;
      $("who").textContent = me.company_name || me.email || "";
      $("only-bot").hidden = !me.only_bot;
      $("password-form").hidden = Boolean(me.only_bot);
      $("email-row").hidden = Boolean(me.email);
      $("current-row").hidden = !me.email;
      loadBots(me);
      var select = $("bot");
      select.textContent = "";
      me.tenants.forEach(function (b) {
        var option = document.createElement("option");
        option.value = b.tenant_id;
        option.textContent = b.business_name || b.tenant_id;
        select.appendChild(option);
      });
      if (!$("day").value) { $("day").value = isoDay(new Date()); }
      return Promise.all([loadLeads(), loadBotData()]);
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

  $("password-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var fields = new FormData(event.target);
    var payload = { password: fields.get("password") };
    if (!$("email-row").hidden) { payload.email = fields.get("email"); }
    if (!$("current-row").hidden) { payload.current_password = fields.get("current_password"); }
    $("password-status").textContent = "";
    api("/api/auth/password", false, "POST", payload)
      .then(function (tokens) {
        store(tokens);  // the other sessions ended; this one goes on with new tokens
        event.target.reset();
        $("password-status").textContent = t("password_saved");
        return showPanel();
      })
      .catch(function (err) { $("password-status").textContent = err.message; });
  });

  $("status").addEventListener("change", loadLeads);
  $("bot").addEventListener("change", loadBotData);
  $("day").addEventListener("change", loadBookings);
  $("span").addEventListener("change", loadBookings);
  $("day-prev").addEventListener("click", function () { shiftDay(-1); });
  $("day-next").addEventListener("click", function () { shiftDay(1); });
  $("add-service").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var fields = new FormData(form);
    api(botPath("/services"), false, "POST", {
      name: fields.get("name"), price: fields.get("price"), duration_min: Number(fields.get("duration_min")),
    }).then(function () { form.reset(); return loadServices(); }, failed);
  });
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
