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
    mine: "mine only", note: "Note", add_note: "Add a note", notes_of: "Notes on the lead of",
    take: "Take it", with_human: "A person has this conversation: the assistant is silent.",
    reply: "Answer the customer (Telegram or the website chat)", send: "Send", release: "Hand back to the assistant",
    hours: "Hours", col_day: "Day", col_hours: "Hours (10:00-19:00; empty: closed)",
    col_breaks: "Breaks", days_off: "Days off", day_off_note: "Why", exports: "CSV exports",
    export_leads: "Leads", export_bookings: "Bookings", export_customers: "Customers",
    hours_saved: "Saved", remove: "Remove", bad_interval: "Write hours as 10:00-19:00, 20:00-22:00",
    weekdays: "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
    subscription: "Subscription", remove_card: "Remove the card", renew: "Renew / pay",
    col_date: "Date", col_amount: "Amount", col_kind: "Payment", plan: "Plan", paid_until: "paid until",
    auto_on: "Auto-renewal: on", auto_off: "Auto-renewal: off.", card: "card", saved_card: "Saved card",
    next_charge: "Next charge", turn_off: "Turn auto-renewal off", turn_on: "Turn auto-renewal on",
    last_failure: "The last charge failed", remove_card_sure: "Remove the saved card? Auto-renewal turns off.",
    k_new: "first payment", k_extend: "renewal", k_renewal: "auto-renewal", k_upgrade: "plan upgrade",
    o_paid: "paid", o_refunded: "refunded", o_refunded_late: "refunded: paid too late",
    o_in_progress: "in progress", o_not_charged: "not charged: auto-renewal was turned off",
    o_declined: "declined", o_not_paid: "not paid", no_payments: "No payments yet.",
    r_insufficient_funds: "not enough money on the card", r_card_expired: "the card has expired",
    r_permission_revoked: "the permission to charge the card was withdrawn",
    r_refused_by_yookassa: "the payment service refused the charge",
    consent: "Auto-renewal: save the card and charge the next period a few days before it starts,"
      + " with a reminder before each charge; turned off here or in /subscription in one click.",
    change_card: "Change the card", change_plan: "Change the plan", col_receipt: "Receipt",
    receipt: "Receipt", change_card_sure: "A card is saved by paying with it: pay the next period"
      + " with the new card (auto-renewal on); it replaces the saved one, which is not charged any more.",
    plan_now: "Plan now", plan_up: "now, {amount} for the {days} days left; then {price} for {period} days",
    plan_down: "from {date}, {price} for {period} days", choose: "Choose", keep: "Keep",
    plan_kept: "The plan stays.", plan_paid: "This upgrade is paid already: the plan is being changed.",
    plan_down_done: "From {date} the bot moves to plan {plan}; nothing is charged now.",
    rc_payment: "Receipt (54-FZ): payment", rc_refund: "Receipt (54-FZ): refund", rc_amount: "Amount",
    rc_date: "Date", rc_msk: "(Moscow time)", rc_fn: "Fiscal storage (FN)", rc_fd: "Fiscal document (FD)",
    rc_fp: "Fiscal attribute (FP)", rc_registered: "Status: registered",
    rc_pending: "The receipt is not registered yet: YooKassa is passing it to the tax service."
      + " Try again in a few minutes.",
    rc_failed: "YooKassa could not register this receipt. Write to us if you need it now.",
    rc_kassa_unavailable: "YooKassa isn't answering right now, so the receipt can't be shown."
      + " Try again in a few minutes.",
    buy_title: "New bot", buy_intro: "Choose a plan and pay for it on YooKassa; once paid, connect"
      + " the bot you made in @BotFather.",
    buy_plan: "Buy “{plan}”: {price} for {days} days", p_pay: "Order of plan “{plan}”: waiting for payment.",
    p_pay_link: "Pay", p_check: "I paid — check", p_not_yet: "The payment hasn't arrived yet.",
    p_token: "Paid, thank you! Now connect your bot: in @BotFather send /newbot, create the bot,"
      + " open it and press Start, then paste its token here.",
    p_token_ph: "Bot token, 123456789:AAH…", p_connect: "Connect",
    p_setting_up: "Paid. Setting up @{bot}: usually under a minute.",
    p_live: "@{bot} is live: it is among your bots.", p_canceled: "Order of plan “{plan}”: the payment was canceled.",
    p_refunded: "Order of plan “{plan}”: the payment was refunded.",
    e_bad_format: "This is not a bot token: it looks like 123456789:AAH… — copy the whole line from @BotFather.",
    e_token_rejected: "Telegram doesn't accept this token: it is wrong or was revoked. In @BotFather:"
      + " /mybots → your bot → API Token.",
    e_own_token: "This is the token of Botfleet's own bot: give the token of your new bot.",
    e_token_in_use: "The bot @{bot} is already connected to Botfleet: create a new one in @BotFather (/newbot).",
    e_press_start: "Open @{bot} in Telegram and press Start (so the bot knows you are its owner), then"
      + " press Connect again.",
    e_telegram_unavailable: "Telegram didn't answer: try again in a minute.",
    e_bot_token_in_use: "The bot @{bot} turned out to be connected already: give the token of another bot.",
    e_invalid_bot_token: "Telegram refused the token of @{bot}: give its current token.",
    e_kassa_unavailable: "YooKassa isn't answering right now: try again in a few minutes.",
    e_sales_unavailable: "The payment service isn't answering: try again shortly.",
    e_unknown_plan: "This plan is no longer sold: choose another one.",
    e_email_needed: "Set your email first (Password login above): the receipt goes there.",
  };
  var RU = {
    "new": "новая", in_work: "в работе", won: "успешная", lost: "отказ",
    no_bots: "Ботов пока нет.", snippet: "Чат-виджет для сайта:",
    cancel: "Отменить", done: "Пришёл", no_show: "Не пришёл", st_confirmed: "подтверждена",
    st_cancelled: "отменена", st_done: "пришёл", st_no_show: "не пришёл", cancel_note: "Причина? (сохранится в записи)", save: "Сохранить",
    staff_says: "Сотрудник", you: "Клиент", assistant: "Ассистент",
    password_saved: "Сохранено: теперь входите по email и этому паролю.",
    take: "Взять себе", notes_of: "Заметки к заявке:", hours_saved: "Сохранено", remove: "Убрать",
    bad_interval: "Пишите часы так: 10:00-19:00, 20:00-22:00",
    weekdays: "Пн,Вт,Ср,Чт,Пт,Сб,Вс",
    plan: "Тариф", paid_until: "оплачен до", auto_on: "Автопродление: включено", auto_off: "Автопродление: выключено.",
    card: "карта", saved_card: "Сохранённая карта", next_charge: "Следующее списание",
    turn_off: "Отключить автопродление", turn_on: "Включить автопродление",
    last_failure: "Последнее списание не прошло", remove_card_sure: "Удалить сохранённую карту? Автопродление отключится.",
    k_new: "первый платёж", k_extend: "продление", k_renewal: "автопродление", k_upgrade: "смена тарифа",
    o_paid: "оплачен", o_refunded: "возвращён", o_refunded_late: "возвращён: оплачен слишком поздно",
    o_in_progress: "в обработке", o_not_charged: "не списан: автопродление было отключено",
    o_declined: "отклонён", o_not_paid: "не оплачен", no_payments: "Платежей пока нет.",
    r_insufficient_funds: "на карте не хватает денег", r_card_expired: "срок действия карты истёк",
    r_permission_revoked: "разрешение на списание с карты отозвано",
    r_refused_by_yookassa: "платёжный сервис отклонил списание",
    change_card_sure: "Карта сохраняется оплатой: оплатите следующий период новой картой (с автопродлением);"
      + " она заменит сохранённую, и старая больше не списывается.",
    plan_now: "Тариф сейчас", plan_up: "сразу, {amount} за оставшиеся {days} дн.; затем {price} за {period} дн.",
    plan_down: "с {date}, {price} за {period} дн.", choose: "Выбрать", keep: "Оставить",
    plan_kept: "Тариф остаётся прежним.", plan_paid: "Этот переход уже оплачен: тариф меняется.",
    plan_down_done: "С {date} бот переходит на тариф {plan}; сейчас ничего не списывается.",
    receipt: "Чек", rc_payment: "Кассовый чек (54-ФЗ): приход", rc_refund: "Кассовый чек (54-ФЗ): возврат прихода",
    rc_amount: "Сумма", rc_date: "Дата", rc_msk: "(МСК)", rc_fn: "ФН", rc_fd: "ФД", rc_fp: "ФП",
    rc_registered: "Статус: зарегистрирован",
    rc_pending: "Чек ещё не зарегистрирован: ЮKassa передаёт его в налоговую. Попробуйте через несколько минут.",
    rc_failed: "ЮKassa не смогла зарегистрировать этот чек. Напишите нам, если он нужен сейчас.",
    rc_kassa_unavailable: "ЮKassa сейчас не отвечает, поэтому чек не показать. Попробуйте через несколько минут.",
    buy_plan: "Купить «{plan}»: {price} за {days} дн.", p_pay: "Заказ тарифа «{plan}»: ждём оплату.",
    p_pay_link: "Оплатить", p_check: "Я оплатил — проверить", p_not_yet: "Оплата ещё не поступила.",
    p_token: "Оплачено, спасибо! Теперь подключите бота: в @BotFather отправьте /newbot, создайте бота,"
      + " откройте его и нажмите «Старт», затем вставьте сюда его токен.",
    p_token_ph: "Токен бота, 123456789:AAH…", p_connect: "Подключить",
    p_setting_up: "Оплачено. Настраиваем @{bot} — обычно это меньше минуты.",
    p_live: "@{bot} работает — он в списке ваших ботов.", p_canceled: "Заказ тарифа «{plan}»: оплата отменена.",
    p_refunded: "Заказ тарифа «{plan}»: оплата возвращена.",
    e_bad_format: "Это не токен бота: он выглядит как 123456789:AAH… — скопируйте всю строку из @BotFather.",
    e_token_rejected: "Telegram не принимает этот токен: он неверный или отозван. В @BotFather:"
      + " /mybots → ваш бот → API Token.",
    e_own_token: "Это токен бота Botfleet: укажите токен вашего нового бота.",
    e_token_in_use: "Бот @{bot} уже подключён к Botfleet: создайте нового в @BotFather (/newbot).",
    e_press_start: "Откройте @{bot} в Telegram и нажмите «Старт» (так бот узнает, что вы его владелец),"
      + " затем снова нажмите «Подключить».",
    e_telegram_unavailable: "Telegram не ответил: попробуйте через минуту.",
    e_bot_token_in_use: "Бот @{bot} уже подключён к Botfleet: укажите токен другого бота.",
    e_invalid_bot_token: "Telegram отклонил токен @{bot}: укажите его актуальный токен.",
    e_kassa_unavailable: "ЮKassa сейчас не отвечает: попробуйте через несколько минут.",
    e_sales_unavailable: "Платёжный сервис не отвечает: попробуйте чуть позже.",
    e_unknown_plan: "Этот тариф больше не продаётся: выберите другой.",
    e_email_needed: "Сначала укажите email (выше, «Вход по паролю»): на него придёт чек.",
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
        if (!r.ok) {
          var error = new Error((body.error && body.error.message) || r.statusText);
          error.code = body.error && body.error.code;
          error.details = (body.error && body.error.details) || {};
          throw error;
        }
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

  function leadPath(lead, rest) {
    return "/api/tenants/" + encodeURIComponent(lead.tenant_id) + "/leads/" + lead.id + rest;
  }

  var notesLead = null;

  // A lead's notes: the same rows /admin shows under the lead; a note added here shows there.
  function openNotes(lead) {
    notesLead = lead;
    return api(leadPath(lead, "/notes")).then(function (notes) {
      $("lead-notes-title").textContent = t("notes_of", "Заметки к заявке:") + " " + lead.name;
      var list = $("notes");
      list.textContent = "";
      notes.forEach(function (n) {
        var item = document.createElement("li");
        item.textContent = new Date(n.created_at).toLocaleString(lang) + " · " + n.text;
        list.appendChild(item);
      });
      $("lead-notes").hidden = false;
    }, function (err) { alert(err.message); });
  }

  function leadActions(lead) {
    var td = document.createElement("td");
    if (lead.status === "new") {
      var take = document.createElement("button");
      take.type = "button";
      take.className = "take";
      take.textContent = t("take", "Взять себе");
      take.addEventListener("click", function () {
        api(leadPath(lead, "/take"), false, "POST").then(loadLeads, function (err) {
          alert(err.message);
          loadLeads();
        });
      });
      td.appendChild(take);
    }
    var notes = document.createElement("button");
    notes.type = "button";
    notes.className = "notes";
    notes.textContent = "📝 " + lead.notes;
    notes.addEventListener("click", function () { openNotes(lead); });
    td.appendChild(notes);
    return td;
  }

  function loadLeads() {
    var status = $("status").value;
    var asked = ++leadsAsked;
    return api("/api/leads?limit=200" + (status ? "&status=" + encodeURIComponent(status) : "") +
      ($("mine").checked ? "&mine=true" : ""))
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
          row.appendChild(leadActions(lead));
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
        // In the bot's zone, as /admin shows it (the owner's browser may be elsewhere).
        cell(row, new Date(b.starts_at).toLocaleString(lang, { dateStyle: "short", timeStyle: "short", timeZone: page.timezone }));
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

  var talkWith = null;

  function showConversation(talk) {
    talkWith = talk.customer_id;
    var box = $("messages");
    box.textContent = "";
    talk.messages.forEach(function (m) {
      var p = document.createElement("p");
      p.className = m.role;
      p.textContent = t(WHO[m.role], m.role) + ": " + m.content;
      box.appendChild(p);
    });
    $("with-human").hidden = !talk.with_human;
    $("release").hidden = !talk.with_human;
    $("conversation").hidden = false;
  }

  function openConversation(id) {
    return api(botPath("/conversations/" + id)).then(showConversation, failed);
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

  // --- hours and days off: the same rows as /admin → Hours ---------------------------------
  function intervalsText(list) {
    return list.map(function (i) { return i.start + "-" + i.end; }).join(", ");
  }

  function parseIntervals(value) {
    var out = [];
    value.split(",").forEach(function (part) {
      part = part.trim();
      if (!part) { return; }
      var m = /^(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})$/.exec(part);
      if (!m) { throw new Error(t("bad_interval", "Пишите часы так: 10:00-19:00, 20:00-22:00")); }
      var pad = function (h) { return ("0" + h).slice(-2); };
      out.push({ start: pad(m[1]) + ":" + m[2], end: pad(m[3]) + ":" + m[4] });
    });
    return out;
  }

  function showHours(hours) {
    var names = t("weekdays", "Пн,Вт,Ср,Чт,Пт,Сб,Вс").split(",");
    var body = $("hours").querySelector("tbody");
    body.textContent = "";
    hours.week.forEach(function (d) {
      var row = document.createElement("tr");
      row.dataset.weekday = d.weekday;
      cell(row, names[d.weekday]);
      ["hours", "breaks"].forEach(function (kind) {
        var input = document.createElement("input");
        input.className = kind;
        input.value = intervalsText(d[kind]);
        input.setAttribute("aria-label", names[d.weekday] + " " + kind);
        var td = document.createElement("td");
        td.appendChild(input);
        row.appendChild(td);
      });
      body.appendChild(row);
    });
    var list = $("days-off");
    list.textContent = "";
    hours.days_off.forEach(function (day) {
      var item = document.createElement("li");
      item.dataset.day = day;
      item.textContent = day + " ";
      var remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = t("remove", "Убрать");
      remove.addEventListener("click", function () {
        api(botPath("/hours/days-off/" + day), false, "DELETE").then(showHours, failed);
      });
      item.appendChild(remove);
      list.appendChild(item);
    });
  }

  function loadHours() {
    return api(botPath("/hours")).then(showHours, failed);
  }

  function saveHours() {
    $("hours-status").textContent = "";
    var week;
    try {
      week = Array.prototype.map.call($("hours").querySelectorAll("tbody tr"), function (row) {
        return {
          weekday: Number(row.dataset.weekday),
          hours: parseIntervals(row.querySelector("input.hours").value),
          breaks: parseIntervals(row.querySelector("input.breaks").value),
        };
      });
    } catch (err) { $("hours-status").textContent = err.message; return; }
    api(botPath("/hours"), false, "PUT", { week: week }).then(function (hours) {
      showHours(hours);
      $("hours-status").textContent = t("hours_saved", "Сохранено");
    }, function (err) { $("hours-status").textContent = err.message; });
  }

  // --- CSV exports: fetched with the bearer token, saved as a file ---------------------------
  function download(what) {
    var path = botPath("/" + what + ".csv" + (lang === "en" ? "?lang=en" : ""));
    fetch(path, { headers: { Authorization: "Bearer " + access() } }).then(function (r) {
      if (!r.ok) { throw new Error(r.statusText); }
      return r.blob();
    }).then(function (blob) {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = bot() + "-" + what + ".csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 1000);
    }).catch(failed);
  }

  // --- the bot's subscription: the sales bot's /subscription, same rows ----------------------
  function money(amount, currency) {
    var value = Number(amount).toLocaleString(lang === "en" ? "en-US" : "ru-RU");
    return value + (currency === "RUB" ? "\u00a0₽" : " " + currency);
  }

  function showSubscription(sub) {
    $("subscription").hidden = false;
    var name = sub.plan_name[lang] || sub.plan_name.ru || sub.plan;
    $("sub-plan").textContent = t("plan", "Тариф") + ": " + name +
      (sub.paid_until ? ", " + t("paid_until", "оплачен до") + " " + sub.paid_until : "");
    var card = sub.card ? sub.card.mask + (sub.card.expiry ? " (" + sub.card.expiry + ")" : "") : "";
    var text;
    if (sub.auto_renew) {
      text = t("auto_on") + (card ? ", " + t("card", "карта") + " " + card : "") + ".";
      if (sub.next_charge) {
        text += " " + t("next_charge") + ": " + sub.next_charge.date + ", " +
          money(sub.next_charge.amount, sub.next_charge.currency) + ".";
      }
      if (sub.last_failure) {
        text += " " + t("last_failure") + ": " + t("r_" + sub.last_failure, sub.last_failure) + ".";
      }
    } else {
      text = t("auto_off") + (card ? " " + t("saved_card") + ": " + card + "." : "");
    }
    $("sub-renewal").textContent = text;
    var toggle = $("sub-toggle");
    toggle.hidden = !sub.auto_renew && !sub.card;
    toggle.textContent = sub.auto_renew ? t("turn_off") : t("turn_on");
    toggle.dataset.on = sub.auto_renew ? "false" : "true";
    $("sub-remove-card").hidden = !sub.card;
    $("sub-pay-form").hidden = !sub.pay_here;
    var renew = $("sub-renew");
    renew.hidden = sub.pay_here || !sub.renew_url;
    if (sub.renew_url) { renew.href = sub.renew_url; } else { renew.removeAttribute("href"); }
    var body = $("payments").querySelector("tbody");
    body.textContent = "";
    sub.payments.forEach(function (p) {
      var row = document.createElement("tr");
      cell(row, p.date);
      cell(row, money(p.amount, p.currency));
      cell(row, t("k_" + p.kind, p.kind));
      cell(row, t("o_" + p.outcome, p.outcome) + (p.reason ? " (" + t("r_" + p.reason, p.reason) + ")" : ""));
      var td = document.createElement("td");
      if (sub.pay_here && (p.status === "paid" || p.status === "refunded")) {
        var open = document.createElement("button");
        open.type = "button";
        open.className = "receipt";
        open.textContent = "🧾 " + t("receipt", "Чек");
        open.addEventListener("click", function () { showReceipt(p.order_id); });
        td.appendChild(open);
      }
      row.appendChild(td);
      body.appendChild(row);
    });
    $("payments").hidden = !sub.payments.length;
    $("sub-status").textContent = sub.payments.length ? "" : t("no_payments");
    $("sub-change-card").hidden = !sub.pay_here;
    $("sub-change-plan").hidden = !sub.pay_here || (sub.status !== "active" && sub.status !== "stopped");
  }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, key) { return values[key]; });
  }

  function line(box, text, tag) {
    var el = document.createElement(tag || "p");
    el.textContent = text;
    box.appendChild(el);
    return el;
  }

  // A payment's 54-FZ receipt, as the sales bot's "🧾 Receipt" shows it.
  function showReceipt(orderId) {
    var box = $("sub-receipt");
    box.hidden = false;
    box.textContent = "";
    api(botPath("/subscription/payments/" + encodeURIComponent(orderId) + "/receipt")).then(function (rc) {
      line(box, rc.date + " — " + money(rc.amount, rc.currency), "h3");
      if (rc.pending) { line(box, t("rc_pending")); }
      rc.receipts.forEach(function (doc) {
        var title = t(doc.type === "refund" ? "rc_refund" : "rc_payment");
        if (doc.status === "pending") {
          if (doc.type === "refund") { line(box, title + ". " + t("rc_pending")); }
          return;
        }
        if (doc.status !== "succeeded") { line(box, title + ". " + t("rc_failed")); return; }
        line(box, title, "strong");
        line(box, t("rc_amount", "Сумма") + ": " + money(doc.total, rc.currency));
        doc.items.forEach(function (item) {
          line(box, "• " + item.description + " — " + Number(item.quantity) + " × " + money(item.amount, rc.currency));
        });
        if (doc.registered) { line(box, t("rc_date", "Дата") + ": " + doc.registered + " " + t("rc_msk")); }
        line(box, t("rc_fn") + ": " + (doc.fiscal_storage_number || "—"));
        line(box, t("rc_fd") + ": " + (doc.fiscal_document_number || "—"));
        line(box, t("rc_fp") + ": " + (doc.fiscal_attribute || "—"));
        line(box, t("rc_registered"));
      });
    }, function (err) {
      line(box, err.code === "kassa_unavailable" ? t("rc_kassa_unavailable") : err.message);
    });
  }

  // "Change the plan", as in the sales bot: a higher plan now (its payment page), a lower one
  // from the next period, the current one kept.
  function planName(plan) { return plan.title[lang] || plan.title.ru || plan.id; }

  function showPlans() {
    var box = $("sub-plans");
    box.hidden = false;
    box.textContent = "";
    api(botPath("/subscription/plans")).then(function (offer) {
      var current = offer.current_title[lang] || offer.current_title.ru || offer.current;
      line(box, t("plan_now", "Тариф сейчас") + ": " + current);
      offer.plans.forEach(function (plan) {
        var terms = plan.upgrade
          ? fill(t("plan_up"), { amount: money(plan.amount_now, "RUB"), days: plan.days_left,
                                 price: money(plan.price, "RUB"), period: plan.period_days })
          : fill(t("plan_down"), { date: offer.paid_until, price: money(plan.price, "RUB"), period: plan.period_days });
        var row = line(box, planName(plan) + ": " + terms + " ");
        var choose = document.createElement("button");
        choose.type = "button";
        choose.className = "choose-plan";
        choose.dataset.plan = plan.id;
        choose.textContent = t("choose") + " " + planName(plan);
        choose.addEventListener("click", function () { choosePlan(plan.id, planName(plan)); });
        row.appendChild(choose);
      });
      var keep = document.createElement("button");
      keep.type = "button";
      keep.textContent = t("keep") + " " + current;
      keep.addEventListener("click", function () { choosePlan(offer.current, current); });
      box.appendChild(keep);
    }, function (err) { line(box, err.message); });
  }

  function choosePlan(planId, name) {
    $("sub-status").textContent = "";
    api(botPath("/subscription/plan"), false, "POST", { plan: planId, locale: lang }).then(function (move) {
      if (move.result === "upgrade" && move.payment) { window.location.assign(move.payment.confirmation_url); return; }
      $("sub-plans").hidden = true;
      return loadSubscription().then(function () {
        $("sub-status").textContent = move.result === "downgrade"
          ? fill(t("plan_down_done"), { date: move.starts, plan: name })
          : t(move.result === "upgrade_paid" ? "plan_paid" : "plan_kept");
      });
    }, function (err) { $("sub-status").textContent = err.message; });
  }

  function loadSubscription() {
    return api(botPath("/subscription")).then(showSubscription, function () {
      $("subscription").hidden = true;  // an admin the owner invited: no billing
    });
  }

  function loadBotData() {
    $("data-error").textContent = "";
    if (!bot()) { $("bot-data").hidden = true; return Promise.resolve(); }
    $("bot-data").hidden = false;
    return Promise.all([
      loadBookings(), loadCustomers(), loadConversations(), loadServices(), loadHours(),
      loadSubscription(),
    ]);
  }

  function shiftDay(delta) {
    var day = new Date($("day").value + "T00:00:00Z");
    day.setUTCDate(day.getUTCDate() + delta * Number($("span").value));
    $("day").value = isoDay(day);
    loadBookings();
  }

  // --- a new bot bought here: plan → YooKassa → the bot token (the sales bot's own orders) ------
  var plansById = {};
  var purchasePoll = null;
  var knownBots = {};  // the account's bots as /api/auth/me listed them
  var relisted = {};

  function said(err, bot) {  // an API error in the page's language when it has a code we know
    var text = err.code ? t("e_" + err.code, "") : "";
    return text ? fill(text, { bot: bot || (err.details && err.details.bot_username) || "" }) : err.message;
  }

  function loadPlans() {
    return api("/api/plans").then(function (list) {
      var box = $("buy-plans");
      box.textContent = "";
      list.plans.forEach(function (plan) {
        plansById[plan.id] = plan;
        var buy = document.createElement("button");
        buy.type = "button";
        buy.className = "buy-plan";
        buy.dataset.plan = plan.id;
        buy.textContent = fill(t("buy_plan"), {
          plan: planName(plan), price: money(plan.price, "RUB"), days: plan.period_days,
        });
        buy.addEventListener("click", function () { buyPlan(plan.id, buy); });
        box.appendChild(buy);
      });
    });
  }

  function buyPlan(planId, button) {
    $("buy-error").textContent = "";
    button.disabled = true;
    api("/api/purchases", false, "POST", { plan: planId, locale: lang })
      .then(function (order) { window.location.assign(order.confirmation_url); }, function (err) {
        button.disabled = false;
        $("buy-error").textContent = said(err);
      });
  }

  function orderPlan(order) {
    var plan = plansById[order.plan];
    return plan ? planName(plan) : order.plan;
  }

  function tokenForm(order, item) {
    var form = document.createElement("form");
    form.className = "purchase-token";
    var input = document.createElement("input");
    input.name = "token";
    input.required = true;
    input.autocomplete = "off";
    input.placeholder = t("p_token_ph");
    input.setAttribute("aria-label", t("p_token_ph"));
    var connect = document.createElement("button");
    connect.type = "submit";
    connect.textContent = t("p_connect");
    var error = document.createElement("p");
    error.className = "error purchase-error";
    error.setAttribute("role", "alert");
    if (order.failure) { error.textContent = said({ code: order.failure }, order.bot_username); }
    form.appendChild(input);
    form.appendChild(connect);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      connect.disabled = true;
      error.textContent = "";
      api("/api/purchases/" + encodeURIComponent(order.order_id) + "/token", false, "POST", { token: input.value })
        .then(function () { return loadPurchases(); }, function (err) {
          connect.disabled = false;
          error.textContent = said(err);
        });
    });
    item.appendChild(form);
    item.appendChild(error);
  }

  function showPurchase(order) {
    var item = document.createElement("li");
    item.className = "purchase";
    item.dataset.stage = order.stage;
    var text = document.createElement("span");
    text.className = "purchase-text";
    var values = { plan: orderPlan(order), bot: order.bot_username || "" };
    text.textContent = fill(t("p_" + order.stage, order.stage), values);
    item.appendChild(text);
    if (order.stage === "pay") {
      var pay = document.createElement("a");
      pay.href = order.confirmation_url;
      pay.textContent = t("p_pay_link");
      item.appendChild(document.createTextNode(" "));
      item.appendChild(pay);
      var check = document.createElement("button");
      check.type = "button";
      check.textContent = t("p_check");
      check.addEventListener("click", function () {
        api("/api/purchases/" + encodeURIComponent(order.order_id)).then(function (now) {
          if (now.stage === "pay") { $("buy-error").textContent = t("p_not_yet"); return; }
          return loadPurchases();
        }, function (err) { $("buy-error").textContent = said(err); });
      });
      item.appendChild(document.createTextNode(" "));
      item.appendChild(check);
    } else if (order.stage === "token") {
      tokenForm(order, item);
    }
    return item;
  }

  // Orders shown: those under way, and the bots made here (the list is the account's own).
  function loadPurchases(returned) {
    return api("/api/purchases").then(function (list) {
      var shown = list.purchases.filter(function (o) { return o.stage !== "canceled"; });
      var box = $("purchases");
      box.textContent = "";
      shown.forEach(function (order) { box.appendChild(showPurchase(order)); });
      var waiting = shown.filter(function (o) { return o.stage === "setting_up" || (returned && o.stage === "pay"); });
      var fresh = shown.filter(function (o) {
        return o.stage === "live" && !knownBots[o.tenant_id] && !relisted[o.tenant_id];
      });
      if (fresh.length) {  // a bot just made: list it with the others (once)
        fresh.forEach(function (o) { relisted[o.tenant_id] = true; });
        return showPanel();
      }
      clearTimeout(purchasePoll);
      if (waiting.length) {
        // Back from YooKassa, or setting up: ask again shortly (an unpaid order's payment is
        // re-read from YooKassa on every ask).
        purchasePoll = setTimeout(function () {
          var asks = waiting.map(function (o) { return api("/api/purchases/" + encodeURIComponent(o.order_id)); });
          Promise.all(asks).then(function () { return loadPurchases(returned); }, function (err) {
            $("buy-error").textContent = said(err);
          });
        }, 1000);
      }
    });
  }

  function loadBuy(me) {
    $("buy").hidden = Boolean(me.only_bot);
    if (me.only_bot) { return Promise.resolve(); }
    var returned = new URLSearchParams(window.location.search).get("purchase") === "back";
    return loadPlans().then(function () { return loadPurchases(returned); }).catch(function (err) {
      if (err.code === "buy_in_telegram") { $("buy").hidden = true; return; }
      $("buy-error").textContent = said(err);
    });
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
      knownBots = {};
      me.tenants.forEach(function (b) { knownBots[b.tenant_id] = true; });
      var select = $("bot");
      select.textContent = "";
      me.tenants.forEach(function (b) {
        var option = document.createElement("option");
        option.value = b.tenant_id;
        option.textContent = b.business_name || b.tenant_id;
        select.appendChild(option);
      });
      if (!$("day").value) { $("day").value = isoDay(new Date()); }
      // Logged in: a bot whose data cannot be read now (409 tenant_unavailable, a 503) says
      // so in the panel; only a session that ended (401, "logged out") goes back to the login.
      return Promise.all([loadLeads(), loadBotData(), loadBuy(me)]).catch(failed);
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
  $("mine").addEventListener("change", loadLeads);
  $("note-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var lead = notesLead;
    if (!lead) { return; }
    api(leadPath(lead, "/notes"), false, "POST", { text: new FormData(form).get("text") })
      .then(function () { form.reset(); lead.notes += 1; return Promise.all([openNotes(lead), loadLeads()]); })
      .catch(function (err) { alert(err.message); });
  });
  $("reply-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    api(botPath("/conversations/" + talkWith + "/reply"), false, "POST", { text: new FormData(form).get("text") })
      .then(function (talk) { form.reset(); showConversation(talk); }, failed);
  });
  $("release").addEventListener("click", function () {
    api(botPath("/conversations/" + talkWith + "/release"), false, "POST").then(showConversation, failed);
  });
  $("save-hours").addEventListener("click", saveHours);
  $("sub-toggle").addEventListener("click", function (event) {
    var on = event.target.dataset.on === "true";
    api(botPath("/subscription/auto-renew"), false, "PUT", { on: on }).then(showSubscription, function (err) {
      $("sub-status").textContent = err.message;
    });
  });
  $("sub-pay").addEventListener("click", function () {
    $("sub-status").textContent = "";
    api(botPath("/subscription/renew"), false, "POST", { auto_renew: $("sub-consent").checked, locale: lang })
      .then(function (payment) { window.location.assign(payment.confirmation_url); }, function (err) {
        $("sub-status").textContent = err.message;
      });
  });
  $("sub-change-card").addEventListener("click", function () {
    if (!window.confirm(t("change_card_sure"))) { return; }
    $("sub-status").textContent = "";
    api(botPath("/subscription/card"), false, "POST", { locale: lang })
      .then(function (payment) { window.location.assign(payment.confirmation_url); }, function (err) {
        $("sub-status").textContent = err.message;
      });
  });
  $("sub-change-plan").addEventListener("click", showPlans);
  $("sub-remove-card").addEventListener("click", function () {
    if (!window.confirm(t("remove_card_sure"))) { return; }
    api(botPath("/subscription/card"), false, "DELETE").then(showSubscription, function (err) {
      $("sub-status").textContent = err.message;
    });
  });
  $("add-day-off").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    var fields = new FormData(form);
    api(botPath("/hours/days-off"), false, "POST", { day: fields.get("day"), note: fields.get("note") })
      .then(function (hours) { form.reset(); showHours(hours); }, failed);
  });
  document.querySelectorAll("button.export").forEach(function (button) {
    button.addEventListener("click", function () { download(button.dataset.what); });
  });
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
