// keepwarm's pages: the live-status indicator, re-sync after a reconnect, the unread count in
// the tab title, SLA countdowns, keeping a half-written reply across live refreshes, and
// keyboard shortcuts (Alt+J/K/T/R, Alt+/ for help). No framework: htmx does the rest.
(function () {
  "use strict";
  var baseTitle = document.title;
  var offlineSince = null;

  function status(state, text) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.dataset.state = state;
    el.textContent = text;
  }

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  document.addEventListener("htmx:sseOpen", function () {
    status("live", "Live");
    // Whatever changed while the stream was down (or between the page's render and the
    // stream's first open) is fetched now.
    htmx.trigger(document.body, "kw:resync");
    offlineSince = null;
  });
  document.addEventListener("htmx:sseError", function () {
    if (offlineSince === null) offlineSince = new Date();
    var seconds = (Date.now() - offlineSince.getTime()) / 1000;
    if (seconds < 20) status("reconnecting", "Reconnecting…");
    else status("offline", "Offline · as of " + clock(offlineSince));
  });
  document.addEventListener("htmx:sseClose", function () {
    status("offline", "Offline · as of " + clock(new Date()));
  });
  document.addEventListener("htmx:sseMessage", function (event) {
    var type = event.detail && event.detail.type;
    if (type === "resync") htmx.trigger(document.body, "kw:resync");
    if (type === "signed-out") window.location.assign("/app/login");
  });

  function updateTitle() {
    var badge = document.querySelector("#nav-unread [data-unread-total]");
    var n = badge ? parseInt(badge.getAttribute("data-unread-total"), 10) || 0 : 0;
    document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      var s = Math.round((due - now) / 1000);
      var a = Math.abs(s);
      var text = a < 60 ? a + " s" : a < 3600 ? Math.floor(a / 60) + " min" :
        a < 86400 ? Math.floor(a / 3600) + " h " + Math.floor((a % 3600) / 60) + " min" :
        Math.floor(a / 86400) + " d";
      el.textContent = s > 0 ? text + " left" : "breached " + text + " ago";
      el.classList.toggle("late", s <= 0);
    });
  }

  // A click, key or submit is a person at work (it keeps the session from idling out);
  // polls, live refreshes and the heartbeat are not.
  document.addEventListener("htmx:configRequest", function (event) {
    var cause = event.detail && event.detail.triggeringEvent;
    if (cause && /^(click|submit|keydown|keyup|change)$/.test(cause.type)) {
      event.detail.headers["X-KW-User"] = "1";
    }
  });

  // A live refresh of the thread pane must not eat what the operator is typing, nor change
  // the reply's idempotency key (a retry of a reply that reached the server sends it once).
  var draft = null;
  // An answer that arrives after a newer pane of the same thread (a slow takeover's answer
  // after the live refresh its own change triggered, or after the reply that followed) must
  // not put the older pane back: each pane carries the microsecond it was rendered.
  function stamp(html) {
    var m = /id="thread-pane"[^>]*data-rendered="(\d+)"[^>]*data-thread="([^"]*)"/.exec(html || "");
    return m ? { at: Number(m[1]), thread: m[2] } : null;
  }
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    var current = document.getElementById("thread-pane");
    if (target && current && target === current && event.detail.shouldSwap) {
      var incoming = stamp(event.detail.serverResponse);
      var shown = Number(current.getAttribute("data-rendered") || 0);
      if (incoming && incoming.thread === current.getAttribute("data-thread") && incoming.at < shown) {
        event.detail.shouldSwap = false;
        return;
      }
    }
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var config = event.detail && event.detail.requestConfig;
    var sentOk = config && config.elt && config.elt.id === "composer" &&
      event.detail.xhr && event.detail.xhr.status === 200;
    if (sentOk) { draft = null; return; }  // the reply went: the composer starts empty
    var box = document.getElementById("reply-body");
    var key = document.querySelector("#composer input[name=idempotency_key]");
    draft = box ? {
      thread: box.closest("[data-thread]") && box.closest("[data-thread]").dataset.thread,
      value: box.value,
      key: key ? key.value : null,
      focused: document.activeElement === box
    } : null;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    // Whatever a swap or a morph brought in is wired now (idempotent): a click or Enter on
    // it must be an htmx request, never the browser's own navigation.
    var pane = document.getElementById("thread-pane");
    if (pane) htmx.process(pane);
    updateTitle();
    tick();
    var box = document.getElementById("reply-body");
    var pane = box && box.closest("[data-thread]");
    if (box && draft && pane && pane.dataset.thread === draft.thread && !box.value && draft.value) {
      box.value = draft.value;
      var keyInput = document.querySelector("#composer input[name=idempotency_key]");
      if (keyInput && draft.key) keyInput.value = draft.key;
      if (draft.focused && !box.disabled) box.focus();
    }
    // What an action said belongs to its thread: another thread's pane clears it.
    var flash = document.getElementById("pane-flash");
    var shownPane = document.getElementById("thread-pane");
    if (flash && shownPane && flash.getAttribute("data-thread") !== (shownPane.getAttribute("data-thread") || "")) {
      flash.innerHTML = "";
      flash.setAttribute("data-thread", shownPane.getAttribute("data-thread") || "");
    }
    var msg = document.querySelector("#attention .notice");
    var announce = document.getElementById("announce");
    if (msg && announce) announce.textContent = msg.textContent;
    var log = document.querySelector("#thread-pane .log");
    if (log && event.detail && event.detail.target && event.detail.target.id === "thread-pane") {
      log.scrollTop = log.scrollHeight;
    }
  });

  function threadLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("#thread-list .thread-item > a"));
  }

  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    var key = event.key.toLowerCase();
    if (key === "j" || key === "k") {
      var links = threadLinks();
      if (!links.length) return;
      var current = links.findIndex(function (a) { return a === document.activeElement || a.getAttribute("aria-current") === "true"; });
      var next = key === "j" ? Math.min(current + 1, links.length - 1) : Math.max(current - 1, 0);
      if (current === -1) next = 0;
      links[next].focus();
      // A shortcut may come in the instant after a swap, before htmx has wired the new
      // element; processing it first is idempotent and makes the click an htmx request.
      htmx.process(links[next]);
      links[next].click();
      event.preventDefault();
    } else if (key === "t") {
      var take = document.getElementById("takeover");
      if (take) { htmx.process(take); take.click(); event.preventDefault(); }
    } else if (key === "r") {
      var box = document.getElementById("reply-body");
      if (box && !box.disabled) { box.focus(); event.preventDefault(); }
    } else if (key === "/") {
      var help = document.getElementById("help-dialog");
      if (help) { help.showModal(); event.preventDefault(); }
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-help]");
    if (button) document.getElementById("help-dialog").showModal();
    var opener = event.target.closest && event.target.closest("[data-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog) { dialog.showModal(); event.preventDefault(); }
    }
  });

  // The thread pane marks its thread in the list as selected after a click (no reload).
  document.addEventListener("htmx:pushedIntoHistory", function () {
    var pane = document.querySelector("#thread-pane[data-thread]");
    threadLinks().forEach(function (a) {
      var item = a.parentElement;
      var on = pane && item.dataset.thread === pane.dataset.thread;
      item.classList.toggle("selected", !!on);
      if (on) a.setAttribute("aria-current", "true"); else a.removeAttribute("aria-current");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    updateTitle();
    tick();
    setInterval(tick, 1000);
  });
})();
