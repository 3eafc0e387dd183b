/* The TV pages on a remote control (docs/interfaces.md §9). ES5 only: old set-top box browsers.
   Arrow keys move the focus to the nearest item in that direction; OK (Enter) is the browser's own;
   Back (Backspace, Escape, or the remote's Back key) goes back; digits type the PIN. The screen follows
   the order by polling a small JSON view (XMLHttpRequest) and reloads when the order needs another screen. */
(function () {
  "use strict";

  var doc = document;
  var body = doc.body;
  var KEYS = { 37: "left", 38: "up", 39: "right", 40: "down" };
  var BACK_KEYS = { 8: true, 27: true, 461: true, 10009: true };

  function items() {
    var all = doc.querySelectorAll("[data-action], [data-nav]");
    var found = [];
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (!el.disabled && (el.offsetWidth > 0 || el.offsetHeight > 0)) {
        found.push(el);
      }
    }
    return found;
  }

  function isItem(el) {
    var list = items();
    for (var i = 0; i < list.length; i++) {
      if (list[i] === el) {
        return true;
      }
    }
    return false;
  }

  function gap(a1, a2, b1, b2) {
    if (b2 < a1) {
      return a1 - b2;
    }
    if (b1 > a2) {
      return b1 - a2;
    }
    return 0;
  }

  // How far ``b`` is from ``a`` going ``dir``; -1 when it is not in that direction at all.
  function distance(dir, a, b) {
    var ax = (a.left + a.right) / 2;
    var ay = (a.top + a.bottom) / 2;
    var bx = (b.left + b.right) / 2;
    var by = (b.top + b.bottom) / 2;
    var primary;
    var side;
    if (dir === "left") {
      if (bx >= ax || b.left >= a.left) { return -1; }
      primary = Math.max(0, a.left - b.right);
      side = gap(a.top, a.bottom, b.top, b.bottom);
    } else if (dir === "right") {
      if (bx <= ax || b.right <= a.right) { return -1; }
      primary = Math.max(0, b.left - a.right);
      side = gap(a.top, a.bottom, b.top, b.bottom);
    } else if (dir === "up") {
      if (by >= ay || b.top >= a.top) { return -1; }
      primary = Math.max(0, a.top - b.bottom);
      side = gap(a.left, a.right, b.left, b.right);
    } else {
      if (by <= ay || b.bottom <= a.bottom) { return -1; }
      primary = Math.max(0, b.top - a.bottom);
      side = gap(a.left, a.right, b.left, b.right);
    }
    var across = dir === "left" || dir === "right" ? Math.abs(by - ay) : Math.abs(bx - ax);
    return primary + 2 * side + across / 20;
  }

  function first() {
    return doc.querySelector("[data-focus]") || items()[0] || null;
  }

  function move(dir) {
    var current = doc.activeElement;
    if (!current || !isItem(current)) {
      focus(first());
      return;
    }
    var from = current.getBoundingClientRect();
    var list = items();
    var best = null;
    var bestScore = -1;
    for (var i = 0; i < list.length; i++) {
      if (list[i] === current) {
        continue;
      }
      var score = distance(dir, from, list[i].getBoundingClientRect());
      if (score >= 0 && (best === null || score < bestScore)) {
        best = list[i];
        bestScore = score;
      }
    }
    if (best) {
      focus(best);
    }
  }

  function focus(el) {
    if (el) {
      el.focus();
    }
  }

  function goBack() {
    var form = doc.getElementById("back");
    if (form) {
      form.submit();
      return;
    }
    var to = body.getAttribute("data-back");
    if (to) {
      window.location.href = to;
    } else {
      window.history.back();
    }
  }

  function pinInput() {
    return doc.querySelector("[data-pin]");
  }

  function typed(input) {
    input.value = input.value.replace(/[^0-9]/g, "").slice(0, 4);
    if (input.value.length === 4) {
      focus(doc.querySelector("[data-action=confirm]"));
    }
  }

  function onKey(event) {
    var key = event.keyCode || event.which;
    var target = event.target;
    var inInput = target && target.tagName === "INPUT";
    if (KEYS[key]) {
      event.preventDefault();
      move(KEYS[key]);
      return;
    }
    if (BACK_KEYS[key] || event.key === "GoBack" || event.key === "BrowserBack") {
      if (key === 8 && inInput && target.value) {
        return; // Backspace deletes a digit first
      }
      event.preventDefault();
      goBack();
      return;
    }
    var digit = key >= 48 && key <= 57 ? key - 48 : key >= 96 && key <= 105 ? key - 96 : -1;
    var pin = pinInput();
    if (digit >= 0 && pin && target !== pin) {
      event.preventDefault();
      if (pin.value.length < 4) {
        pin.value += String(digit);
      }
      focus(pin);
      typed(pin);
    }
  }

  function poll() {
    var url = body.getAttribute("data-poll");
    var shown = body.getAttribute("data-screen");
    var every = parseInt(body.getAttribute("data-poll-every"), 10) || 1500;
    if (!url) {
      return;
    }
    // Once the page is being left (Back, OK on a link or a form), an answer that comes meanwhile must not
    // reload it: that would cancel the navigation the viewer asked for.
    var leaving = false;
    window.addEventListener("beforeunload", function () {
      leaving = true;
    });
    function again(delay) {
      window.setTimeout(ask, delay);
    }
    function ask() {
      if (leaving) {
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("GET", url, true);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.onreadystatechange = function () {
        if (xhr.readyState !== 4 || leaving) {
          return;
        }
        var answer = null;
        if (xhr.status === 200) {
          try {
            answer = JSON.parse(xhr.responseText);
          } catch (e) {
            answer = null;
          }
        }
        if ((answer && answer.screen && answer.screen !== shown) || xhr.status === 403 || xhr.status === 410) {
          // A new screen; or the session ended (403, 410): the page then says so, with the way back.
          window.location.reload();
          return;
        }
        again(answer ? every : 2 * every);
      };
      xhr.send(null);
    }
    again(every);
  }

  function countdown(el) {
    var left = parseInt(el.getAttribute("data-seconds-left"), 10) || 0;
    var out = el.querySelector("[data-left]");
    var label = el.querySelector("[data-left-label]");
    var started = new Date().getTime();
    function pad(n) {
      return (n < 10 ? "0" : "") + n;
    }
    function tick() {
      var now = Math.max(0, left - Math.floor((new Date().getTime() - started) / 1000));
      out.innerHTML = pad(Math.floor(now / 60)) + ":" + pad(now % 60);
      if (now === 0) {
        el.className += " over";
        if (label) {
          label.innerHTML = "";
          label.appendChild(doc.createTextNode(el.getAttribute("data-expired-text")));
        }
        return;
      }
      window.setTimeout(tick, 500);
    }
    tick();
  }

  function start() {
    doc.addEventListener("keydown", onKey, false);
    var back = doc.querySelector("[data-history-back]");
    if (back) {
      back.addEventListener("click", function () { window.history.back(); }, false);
    }
    var pin = pinInput();
    if (pin) {
      pin.addEventListener("input", function () { typed(pin); }, false);
    }
    var counters = doc.querySelectorAll("[data-seconds-left]");
    for (var i = 0; i < counters.length; i++) {
      countdown(counters[i]);
    }
    if (!isItem(doc.activeElement)) {
      focus(first());
    }
    poll();
  }

  start();
})();
