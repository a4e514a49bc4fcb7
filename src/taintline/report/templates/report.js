// taintline report: pan/zoom the cascade picture, show a node's facts, filter/sort findings.
// Our own code, inlined and allowed by its CSP hash. Every value from the case is written
// with textContent (never innerHTML): names in a case are attacker-controlled.
(function () {
  'use strict';
  var dataEl = document.getElementById('tl-nodes');
  var nodes = dataEl ? JSON.parse(dataEl.textContent) : [];
  var svg = document.getElementById('cascade-svg');
  var panel = document.getElementById('node-panel');

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  // -- pan and zoom (the viewBox) ------------------------------------------------------------
  var full = null, vb = null;
  function setView(v) {
    vb = v;
    svg.setAttribute('viewBox', [v.x, v.y, v.w, v.h].join(' '));
  }
  function toSvg(clientX, clientY) {
    var m = svg.getScreenCTM();
    if (!m) { return { x: 0, y: 0 }; }
    var p = svg.createSVGPoint();
    p.x = clientX; p.y = clientY;
    p = p.matrixTransform(m.inverse());
    return { x: p.x, y: p.y };
  }
  function zoom(factor, cx, cy) {
    var w = Math.min(full.w * 1.5, Math.max(full.w / 40, vb.w * factor));
    var f = w / vb.w, h = vb.h * f;
    setView({ x: cx - (cx - vb.x) * f, y: cy - (cy - vb.y) * f, w: w, h: h });
  }
  if (svg) {
    var b = svg.viewBox.baseVal;
    full = { x: b.x, y: b.y, w: b.width, h: b.height };
    setView({ x: full.x, y: full.y, w: full.w, h: full.h });
    svg.addEventListener('wheel', function (ev) {
      ev.preventDefault();
      var p = toSvg(ev.clientX, ev.clientY);
      zoom(ev.deltaY > 0 ? 1.2 : 1 / 1.2, p.x, p.y);
    }, { passive: false });
    var drag = null;
    svg.addEventListener('pointerdown', function (ev) {
      delete svg.dataset.dragged;
      drag = { x: ev.clientX, y: ev.clientY, vb: vb, moved: false };
    });
    window.addEventListener('pointermove', function (ev) {
      if (!drag) { return; }
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) { drag.moved = true; svg.classList.add('panning'); }
      if (!drag.moved) { return; }
      var m = svg.getScreenCTM();
      var k = m ? 1 / m.a : 1;
      setView({ x: drag.vb.x - dx * k, y: drag.vb.y - dy * k, w: drag.vb.w, h: drag.vb.h });
    });
    window.addEventListener('pointerup', function () {
      svg.classList.remove('panning');
      if (drag && drag.moved) { svg.dataset.dragged = '1'; }
      drag = null;
    });
    document.querySelectorAll('[data-zoom]').forEach(function (btn) {
      btn.addEventListener('click', function () {
        var how = btn.getAttribute('data-zoom');
        if (how === 'reset') { setView({ x: full.x, y: full.y, w: full.w, h: full.h }); return; }
        zoom(how === 'in' ? 1 / 1.4 : 1.4, vb.x + vb.w / 2, vb.y + vb.h / 2);
      });
    });
  }

  // -- a node's facts and its explaining path ------------------------------------------------
  function chain(i) {
    var out = [], seen = {};
    while (i !== null && i !== undefined && !seen[i] && nodes[i]) {
      seen[i] = true; out.push(i); i = nodes[i].p;
    }
    return out;
  }
  function row(dl, term, value) {
    dl.appendChild(el('dt', '', term));
    dl.appendChild(el('dd', '', value));
  }
  function select(i) {
    var n = nodes[i];
    if (!n || !panel) { return; }
    document.querySelectorAll('#cascade-svg .on, #cascade-svg .sel').forEach(function (e) {
      e.classList.remove('on'); e.classList.remove('sel');
    });
    var path = chain(i);
    path.forEach(function (j) {
      var g = document.getElementById('n-' + j), e = document.getElementById('e-' + j);
      if (g) { g.classList.add('on'); }
      if (e) { e.classList.add('on'); }
    });
    var me = document.getElementById('n-' + i);
    if (me) { me.classList.add('sel'); }
    if (svg) { svg.classList.add('has-sel'); }

    panel.textContent = '';
    panel.appendChild(el('h3', 'ref', n.k + ':' + n.key));
    var dl = el('dl');
    row(dl, 'kind', n.k);
    row(dl, 'earliest compromise', n.t || 'any time (no known start)');
    row(dl, 'confidence', n.c.toFixed(2));
    row(dl, 'facts from the seed', String(n.h));
    if (n.r) { row(dl, 'seed', 'yes: a starting point of this cascade run'); }
    panel.appendChild(dl);
    if (n.f) {
      panel.appendChild(el('h4', '', 'The fact that explains it'));
      var fd = el('dl');
      row(fd, 'fact', n.pr + ' --' + n.f.kind + '--> ' + n.k + ':' + n.key);
      row(fd, 'edge', n.f.src + ' → ' + n.f.dst);
      row(fd, 'valid', (n.f.from || 'always') + ' – ' + (n.f.until || 'open'));
      row(fd, 'recorded', n.f.rec || '');
      row(fd, 'source', n.f.source || '(none)');
      row(fd, 'rule', n.f.rule || '');
      panel.appendChild(fd);
    }
    var steps = path.slice().reverse().filter(function (j) { return nodes[j].f; });
    panel.appendChild(el('h4', '', 'Explaining path (' + steps.length + ' fact' + (steps.length === 1 ? '' : 's') + ', highlighted)'));
    var root = nodes[path[path.length - 1]];
    if (root && root.p === null && root.pr) {
      panel.appendChild(el('p', 'note', 'Earlier facts (from ' + root.pr + ') are aggregated and not drawn.'));
    }
    var ol = el('ol', 'path');
    steps.forEach(function (j) {
      var s = nodes[j];
      var li = el('li');
      li.appendChild(el('span', 'step', s.pr + ' --' + s.f.kind + '--> ' + s.k + ':' + s.key));
      li.appendChild(el('span', 'meta', ' from ' + (s.t || 'any time') + ' [' + (s.f.source || 'no source') + ']'));
      ol.appendChild(li);
    });
    panel.appendChild(ol);
  }
  document.querySelectorAll('#cascade-svg .node').forEach(function (g) {
    var i = Number(g.getAttribute('data-i'));
    g.addEventListener('click', function () {
      if (svg.dataset.dragged) { delete svg.dataset.dragged; return; }
      select(i);
    });
    g.addEventListener('keydown', function (ev) {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(i); }
    });
  });
  document.querySelectorAll('a[data-node]').forEach(function (a) {
    a.addEventListener('click', function () { select(Number(a.getAttribute('data-node'))); });
  });
  var m = /^#n-(\d+)$/.exec(location.hash);
  if (m) { select(Number(m[1])); }

  // -- findings: filter and sort ------------------------------------------------------------
  var filter = document.getElementById('filter');
  if (filter) {
    filter.addEventListener('input', function () {
      var q = filter.value.toLowerCase();
      document.querySelectorAll('#findings tbody tr').forEach(function (tr) {
        tr.hidden = tr.textContent.toLowerCase().indexOf(q) < 0;
      });
    });
  }
  document.querySelectorAll('table.sortable th').forEach(function (th) {
    th.addEventListener('click', function () {
      var table = th.closest('table'), body = table.tBodies[0], idx = th.cellIndex;
      var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
      Array.from(body.rows).sort(function (a, b) {
        var x = idx === 0 && a.dataset.rank ? a.dataset.rank : a.cells[idx].textContent;
        var y = idx === 0 && b.dataset.rank ? b.dataset.rank : b.cells[idx].textContent;
        return asc ? x.localeCompare(y) : y.localeCompare(x);
      }).forEach(function (tr) { body.appendChild(tr); });
    });
  });
  document.documentElement.dataset.ready = '1';
  document.documentElement.dataset.readyMs = String(Math.round(performance.now()));
}());
