// The emulator's chat view: one user talking to one bot, over the emulator's control API
// (/_emulator/...), the same one EmulatorClient and `python -m telegram_emulator.chat` use.
// Query parameters preselect the chat: ?bot=<username or token>&user=<id>&name=<first name>.
"use strict";

const $ = (selector) => document.querySelector(selector);
const view = {
  bots: [],         // [{token, username, first_name, ...}]
  token: null,      // the chosen bot
  version: 0,       // emulator state version of the last refresh
  shown: "",        // what the chat pane shows (to redraw only on change)
};

async function api(method, path, { query, body } = {}) {
  const url = new URL("/_emulator" + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(key, String(value));
  }
  const init = { method };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const data = await response.json();
  if (!data.ok) throw new Error(data.description || response.statusText);
  return data.result;
}

function status(text, error = false) {
  const element = $("#status");
  element.textContent = text;
  element.className = error ? "error" : "";
}

function toast(text) {
  const element = document.createElement("div");
  element.className = "toast";
  element.textContent = text;
  document.body.append(element);
  setTimeout(() => element.remove(), 3500);
}

function userId() {
  return Number($("#user").value) || 1001;
}

function who() {
  return { user_id: userId(), first_name: $("#name").value || "User" };
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- bots and users
async function loadBots() {
  const bots = await api("GET", "/bots");
  const known = JSON.stringify(view.bots.map((b) => b.token));
  view.bots = bots;
  if (JSON.stringify(bots.map((b) => b.token)) === known) return;
  const select = $("#bot");
  select.replaceChildren(
    ...bots.map((bot) => {
      const option = element("option", "", `@${bot.username} (${bot.first_name})`);
      option.value = bot.token;
      return option;
    }),
  );
  if (view.token && bots.some((b) => b.token === view.token)) select.value = view.token;
  else if (bots.length) chooseBot(bots[0].token);
}

function chooseBot(token) {
  view.token = token;
  $("#bot").value = token;
  view.shown = "";
  refresh().catch(showError);
}

async function loadUsers() {
  if (!view.token) return;
  const users = await api("GET", "/chats", { query: { token: view.token } });
  $("#users").replaceChildren(
    ...users.map((user) => {
      const option = element("option");
      option.value = user.user_id;
      option.label = user.first_name;
      return option;
    }),
  );
}

// ---------------------------------------------------------------- the chat
function renderButtons(message) {
  const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
  if (!rows.length) return null;
  const box = element("div", "buttons");
  for (const row of rows) {
    const line = element("div", "row");
    for (const button of row) {
      let node;
      if (button.url) {
        // A URL button opens its link; Telegram sends the bot nothing.
        node = element("a", "inline url", `${button.text} ↗`);
        node.href = button.url;
        node.target = "_blank";
        node.rel = "noopener";
        node.title = button.url;
      } else if (button.callback_data !== undefined) {
        node = element("button", "inline", button.text);
        node.type = "button";
        node.addEventListener("click", () => press(message.message_id, button.callback_data));
      } else {
        node = element("button", "inline", button.text);
        node.disabled = true;
        node.title = "this kind of button is not emulated";
      }
      line.append(node);
    }
    box.append(line);
  }
  return box;
}

function renderMessage(message) {
  const node = element("div", message.outgoing ? "msg bot" : "msg user");
  node.dataset.messageId = message.message_id;
  const text = message.plain_text ?? message.plain_caption ?? "";
  node.append(element("span", "text", text));
  if (message.document) {
    const link = element("a", "file", `📎 ${message.document.file_name || "document"}`);
    link.href = `/_emulator/file?token=${encodeURIComponent(view.token)}&file_id=${encodeURIComponent(message.document.file_id)}`;
    link.download = message.document.file_name || "document";
    node.append(link);
  }
  if (message.photo) node.append(element("span", "file", "🖼 photo"));
  if (message.voice) node.append(element("span", "file", `🎤 voice, ${message.voice.duration || 0} s`));
  if (message.contact) node.append(element("span", "file", `📞 ${message.contact.phone_number}`));
  const buttons = renderButtons(message);
  if (buttons) node.append(buttons);
  const time = new Date(message.date * 1000).toLocaleTimeString();
  node.append(element("span", "meta", message.edits.length ? `edited · ${time}` : time));
  return node;
}

function renderKeyboard(keyboard) {
  const box = $("#keyboard");
  box.replaceChildren();
  for (const row of (keyboard && keyboard.keyboard) || []) {
    const line = element("div", "row");
    for (const button of row) {
      const label = typeof button === "string" ? button : button.text;
      const node = element("button", "reply", label);
      node.type = "button";
      if (typeof button === "object" && button.request_contact) {
        node.addEventListener("click", () => shareContact());
      } else {
        node.addEventListener("click", () => act(() =>
          api("POST", "/users/click_reply", { body: { token: view.token, ...who(), text: label } })));
      }
      line.append(node);
    }
    box.append(line);
  }
}

async function refresh() {
  if (!view.token) return;
  const result = await api("GET", "/messages", {
    query: { token: view.token, chat_id: userId(), include_incoming: 1 },
  });
  view.version = Math.max(view.version, result.version);
  const alive = result.messages.filter((m) => !m.deleted);
  const signature = JSON.stringify([alive, result.reply_keyboard || null]);
  if (signature === view.shown) return;
  view.shown = signature;
  const pane = $("#chat");
  pane.replaceChildren(...alive.map(renderMessage));
  renderKeyboard(result.reply_keyboard);
  pane.scrollTop = pane.scrollHeight;
}

// ---------------------------------------------------------------- the user's actions
async function act(action) {
  try {
    status("");
    await action();
    await refresh();
  } catch (error) {
    showError(error);
  }
}

function showError(error) {
  status(String(error.message || error), true);
}

async function press(messageId, data) {
  await act(async () => {
    const result = await api("POST", "/users/click", {
      body: { token: view.token, user_id: userId(), message_id: messageId, callback_data: data },
    });
    waitForAnswer(result.callback_query_id).catch(() => {});
  });
}

async function waitForAnswer(queryId) {
  // The bot's answerCallbackQuery: its text is a toast (or an alert), its url opens.
  for (let attempt = 0; attempt < 20; attempt++) {
    const found = await api("GET", "/callback_queries", { query: { token: view.token } });
    const query = found.queries.find((q) => q.callback_query_id === queryId);
    if (query && query.answered) {
      if (query.text) (query.show_alert ? alert : toast)(query.text);
      if (query.url) window.open(query.url, "_blank", "noopener");
      return;
    }
    await api("GET", "/wait", { query: { since: found.version, timeout: 1 } });
  }
}

function shareContact() {
  const phone = prompt("Phone number to share", "+79001234567");
  if (!phone) return;
  act(() => api("POST", "/users/contact", { body: { token: view.token, ...who(), phone_number: phone } }));
}

$("#compose").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#text");
  const text = input.value;
  if (!text.trim() || !view.token) return;
  input.value = "";
  act(() => api("POST", "/users/message", { body: { token: view.token, ...who(), text } }));
});
$("#contact").addEventListener("click", shareContact);
$("#bot").addEventListener("change", (event) => chooseBot(event.target.value));
$("#user").addEventListener("change", () => {
  view.shown = "";
  refresh().catch(showError);
});

// ---------------------------------------------------------------- start and follow changes
async function follow() {
  for (;;) {
    try {
      const result = await api("GET", "/wait", { query: { since: view.version, timeout: 25 } });
      view.version = result.version;
      await loadBots();
      await refresh();
      await loadUsers();
      status("");
    } catch (error) {
      showError(error);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

async function start() {
  const params = new URLSearchParams(location.search);
  if (params.get("user")) $("#user").value = params.get("user");
  if (params.get("name")) $("#name").value = params.get("name");
  try {
    await loadBots();
    const wanted = params.get("bot");
    const match = view.bots.find((b) => b.token === wanted || b.username === wanted);
    if (match) chooseBot(match.token);
    await loadUsers();
  } catch (error) {
    showError(error);
  }
  follow();
}

start();
