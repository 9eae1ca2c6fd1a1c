// ironbay console: progressive enhancement only. Every page works without this file; with it,
// parts of pages update live, typed confirmations enable their button, and uploads show progress.
(function () {
  'use strict';

  // Live parts: an element with an id and data-live-topics="workflow asset:ast_… …" is refreshed
  // when the server reports a change to one of its topics. The page (or data-live-url) is fetched
  // again and the element's content replaced by the same element of the fresh page: the server
  // renders everything, the script only swaps it in.
  var timers = new Map();
  var inflight = new Set();

  function topicsOf(el) {
    return (el.getAttribute('data-live-topics') || '').split(/\s+/).filter(Boolean);
  }

  function concerns(el, c) {
    if (c.topic === '*') return true;
    return topicsOf(el).some(function (t) {
      return t === c.topic || (c.id && t === c.topic + ':' + c.id) || (c.asset_id && t === 'asset:' + c.asset_id);
    });
  }

  function refresh(el) {
    if (timers.has(el.id)) return;
    timers.set(el.id, setTimeout(function () {
      timers.delete(el.id);
      if (inflight.has(el.id)) { refresh(el); return; }
      inflight.add(el.id);
      var url = el.getAttribute('data-live-url') || window.location.href;
      fetch(url, { credentials: 'same-origin', headers: { 'X-Ironbay-Live': '1' } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById(el.id);
          if (fresh) {
            // Keep keyboard focus where it was when the element is re-rendered around it.
            var focused = document.activeElement && document.activeElement.id;
            el.innerHTML = fresh.innerHTML;
            if (focused && el.contains(document.getElementById(focused))) document.getElementById(focused).focus();
            el.dispatchEvent(new CustomEvent('ironbay:updated', { bubbles: true }));
            var n = Number(document.body.getAttribute('data-live-updates') || '0') + 1;
            document.body.setAttribute('data-live-updates', String(n));
          }
        })
        .catch(function () { /* the next change retries */ })
        .finally(function () { inflight.delete(el.id); });
    }, 150));
  }

  function connectLive() {
    var parts = Array.prototype.filter.call(document.querySelectorAll('[data-live-topics]'), function (el) { return el.id; });
    if (!parts.length || !window.EventSource) return;
    var es = new EventSource('/console/events');
    es.addEventListener('open', function () { document.body.setAttribute('data-live', 'connected'); });
    es.addEventListener('error', function () { document.body.setAttribute('data-live', 'reconnecting'); });
    es.addEventListener('change', function (ev) {
      var c;
      try { c = JSON.parse(ev.data); } catch (e) { return; }
      parts.forEach(function (el) { if (concerns(el, c)) refresh(el); });
    });
  }

  // Typed confirmation: <input data-confirm-match="web-01" data-confirm-button="wipe-go">. The
  // button stays disabled until the text matches; the server checks again on submit.
  function wireConfirmations() {
    document.querySelectorAll('input[data-confirm-match]').forEach(function (input) {
      var button = document.getElementById(input.getAttribute('data-confirm-button'));
      if (!button) return;
      var check = function () { button.disabled = input.value.trim() !== input.getAttribute('data-confirm-match'); };
      input.addEventListener('input', check);
      check();
    });
  }

  // Uploads with progress: <form data-upload-url="…"> with a file input and a <progress>. The
  // file is sent as the request body (PUT), the way the API takes it; without JS the form posts.
  function wireUploads() {
    document.querySelectorAll('form[data-upload-url]').forEach(function (form) {
      form.addEventListener('submit', function (ev) {
        var file = form.querySelector('input[type=file]').files[0];
        if (!file) return;
        ev.preventDefault();
        var bar = form.querySelector('progress');
        var status = form.querySelector('[role=status]');
        var xhr = new XMLHttpRequest();
        xhr.open('PUT', form.getAttribute('data-upload-url'));
        xhr.setRequestHeader('Content-Type', 'application/octet-stream');
        xhr.setRequestHeader('X-CSRF-Token', form.querySelector('input[name=_csrf]').value);
        xhr.upload.addEventListener('progress', function (e) {
          if (e.lengthComputable && bar) { bar.max = e.total; bar.value = e.loaded; }
          if (status) status.textContent = Math.floor(100 * e.loaded / Math.max(e.total, 1)) + '% sent';
        });
        xhr.addEventListener('load', function () {
          if (xhr.status >= 200 && xhr.status < 300) {
            window.location.href = form.getAttribute('data-upload-done') || window.location.href;
          } else if (status) {
            var msg = 'Upload failed (' + xhr.status + ')';
            try { msg = JSON.parse(xhr.responseText).error || msg; } catch (e) { /* not JSON */ }
            status.textContent = msg;
          }
        });
        xhr.addEventListener('error', function () { if (status) status.textContent = 'Upload failed: the connection broke.'; });
        xhr.send(file);
      });
    });
  }

  document.addEventListener('DOMContentLoaded', function () {
    wireConfirmations();
    wireUploads();
    connectLive();
    document.addEventListener('ironbay:updated', wireConfirmations);
  });
})();
