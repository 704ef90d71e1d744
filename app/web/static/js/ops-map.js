// The district map, drawn as inline SVG from the coordinates of GET /v1/ops/map: no tiles, no
// request anywhere. Seniors with open orders are squares (red for SOS, brown when escalated);
// caregivers on duty are shaped AND coloured by state (never colour alone); lines join a
// caregiver to the order they are offered (dashed), assigned (solid) or visiting (thick).
// Open orders are drawn over caregivers, SOS over everything; a marker that would cover
// another is nudged aside with a thin leader back to its place, and names go where they
// cover no marker and no other name.
import { t } from "./doorstep.js";
import * as words from "./ops-text.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 440;
const PAD = 36;
const EARTH_M_PER_DEG = 111_320;

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Shapes centred on (0, 0), about 14 px across.
const SHAPES = {
  order: () => svg("rect", { x: -6, y: -6, width: 12, height: 12, rx: 2 }),
  idle: () => svg("circle", { r: 6.5 }),
  offered: () => svg("path", { d: "M0,-8 L7.5,6 L-7.5,6 Z" }),
  assigned: () => svg("path", { d: "M0,-8 L8,0 L0,8 L-8,0 Z" }),
  in_progress: () => svg("path", { d: "M-3.5,-7 L3.5,-7 L7,0 L3.5,7 L-3.5,7 L-7,0 Z" }),
};

export const CAREGIVER_STATES = ["idle", "offered", "assigned", "in_progress"];

function stateLabel(state) {
  return {
    idle: t("Caregiver free"),
    offered: t("Caregiver with an offer"),
    assigned: t("Caregiver with a visit to go to"),
    in_progress: t("Caregiver on a visit"),
  }[state] || state;
}

function orderClass(order) {
  if (order.priority === "emergency") return "sos";
  if (order.status === "escalated") return "escalated";
  return "open";
}

/** The legend: one entry per symbol, drawn with the same shapes as the map. */
export function legend(list) {
  const entries = [
    ["order sos", SHAPES.order, t("SOS at the senior's home")],
    ["order escalated", SHAPES.order, t("Escalated order")],
    ["order open", SHAPES.order, t("Other open order")],
    ...CAREGIVER_STATES.map((s) => ["cg " + s, SHAPES[s], stateLabel(s)]),
    ["line offered", null, t("Offer out")],
    ["line assigned", null, t("Assigned")],
    ["line in_progress", null, t("Visit under way")],
  ];
  list.replaceChildren(
    ...entries.map(([cls, shape, text]) => {
      const icon = svg("svg", { width: 26, height: 18, viewBox: "-13 -9 26 18", "aria-hidden": "true", focusable: "false", class: "legend-icon" });
      if (shape) icon.append(svg("g", { class: "mk " + cls }, shape()));
      else icon.append(svg("line", { x1: -12, y1: 0, x2: 12, y2: 0, class: cls }));
      const item = document.createElement("li");
      item.append(icon, document.createTextNode(text));
      return item;
    }),
  );
}

// A marker's half-size and an SOS's with its pulse ring (map units), and the gap between them.
const MARK = 8;
const SOS_MARK = 14;
const GAP = 2;
const LABEL_H = 13;

function box(x0, y0, w, h) {
  return { x0, y0, x1: x0 + w, y1: y0 + h };
}

function overlap(a, b) {
  const w = Math.min(a.x1, b.x1) - Math.max(a.x0, b.x0);
  const h = Math.min(a.y1, b.y1) - Math.max(a.y0, b.y0);
  return w > 0 && h > 0 ? w * h : 0;
}

/** Where a marker of half-size ``r`` at (x, y) goes: there, or the nearest free place on
 * rings around it. */
function nudge(spots, x0, y0, r = MARK) {
  const free = (x, y) => x > r && x < W - r && y > r && y < H - r
    && spots.every((s) => Math.hypot(s.x - x, s.y - y) >= s.r + r + GAP);
  let spot = { x: x0, y: y0, x0, y0, r };
  if (!free(x0, y0)) {
    const step = 2 * MARK + GAP;
    search: for (let ring = 1; ring <= 6; ring += 1) {
      const steps = 6 * ring;
      for (let i = 0; i < steps; i += 1) {
        const angle = (2 * Math.PI * i) / steps - Math.PI / 2;
        const x = x0 + ring * step * Math.cos(angle);
        const y = y0 + ring * step * Math.sin(angle);
        if (free(x, y)) {
          spot = { x, y, x0, y0, r };
          break search;
        }
      }
    }
  }
  spots.push(spot);
  return spot;
}

/** A name's place beside its marker: the first that covers nothing, else the least covering. */
function labelSpot(p, width, taken) {
  const places = [
    [p.x + 10, p.y + 4], [p.x - 10 - width, p.y + 4],
    [p.x - width / 2, p.y - 12], [p.x - width / 2, p.y + 20],
    [p.x + 10, p.y - 9], [p.x + 10, p.y + 17], [p.x - 10 - width, p.y - 9], [p.x - 10 - width, p.y + 17],
  ];
  let best = null;
  for (const [tx, ty] of places) {
    const b = box(tx, ty - LABEL_H + 3, width, LABEL_H);
    const out = (b.x0 < 0 ? -b.x0 : 0) + (b.x1 > W ? b.x1 - W : 0) + (b.y0 < 0 ? 1 : 0) + (b.y1 > H ? 1 : 0);
    const cost = taken.reduce((sum, other) => sum + overlap(b, other), 0) + out * 100;
    if (!best || cost < best.cost) best = { tx, ty, box: b, cost };
    if (cost === 0) break;
  }
  return best;
}

/**
 * Draw ``data`` (MapOut) into ``container``. ``selected``: the order open in the detail;
 * ``onOrder(id)``: a click on an order's marker. Returns {orders, caregivers, unplaced}.
 */
export function draw(container, data, { selected = null, onOrder = () => {}, zone } = {}) {
  const placed = data.caregivers.filter((c) => c.lat !== null && c.lon !== null);
  const points = [...data.orders, ...placed];
  const summary = t("{orders} open orders and {caregivers} caregivers on duty on the map", {
    orders: data.orders.length,
    caregivers: placed.length,
  });
  if (!points.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = t("Nothing to show yet: no open orders and no caregiver on duty with a position.");
    container.replaceChildren(empty);
    return { orders: 0, caregivers: 0, unplaced: data.caregivers.length - placed.length };
  }
  let [south, north, west, east] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const p of points) {
    south = Math.min(south, p.lat);
    north = Math.max(north, p.lat);
    west = Math.min(west, p.lon);
    east = Math.max(east, p.lon);
  }
  const midLat = (south + north) / 2;
  const kx = Math.cos((midLat * Math.PI) / 180);
  // At least 1 km across, so a single home is not a dot filling the map.
  const minSpan = 1000 / EARTH_M_PER_DEG;
  const spanY = Math.max(north - south, minSpan);
  const spanX = Math.max((east - west) * kx, minSpan);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY); // px per degree
  const cx = (west + east) / 2;
  const cy = midLat;
  const x = (lon) => W / 2 + (lon - cx) * kx * scale;
  const y = (lat) => H / 2 - (lat - cy) * scale;

  const root = svg("svg", {
    viewBox: "0 0 " + W + " " + H,
    class: "map-svg",
    role: "img",
    "aria-label": summary,
    preserveAspectRatio: "xMidYMid meet",
  });
  // A 1 km grid and a scale bar, so distances can be judged at a glance.
  const kmPx = (1000 / EARTH_M_PER_DEG) * scale;
  const grid = svg("g", { class: "grid", "aria-hidden": "true" });
  if (kmPx > 12) {
    for (let gx = W / 2 - Math.floor(W / 2 / kmPx) * kmPx; gx < W; gx += kmPx) {
      grid.append(svg("line", { x1: gx, y1: 0, x2: gx, y2: H }));
    }
    for (let gy = H / 2 - Math.floor(H / 2 / kmPx) * kmPx; gy < H; gy += kmPx) {
      grid.append(svg("line", { x1: 0, y1: gy, x2: W, y2: gy }));
    }
  }
  root.append(grid);
  // The longest round distance that fits in a third of the map.
  const barKm = [50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1].find((km) => km * kmPx <= W / 3) || 0.1;
  const bar = barKm * kmPx;
  root.append(
    svg("g", { class: "scale", transform: "translate(" + (W - bar - 16) + "," + (H - 14) + ")" },
      svg("line", { x1: 0, y1: 0, x2: bar, y2: 0 }),
      svg("text", { x: bar / 2, y: -5, "text-anchor": "middle" }, t("{n} km", { n: barKm })),
    ),
  );

  // Where each marker goes: SOS first, then escalated, other orders, caregivers; one that
  // would cover another is nudged aside (a thin leader goes back to where it really is).
  const rank = { sos: 0, escalated: 1, open: 2 };
  const sortedOrders = [...data.orders].sort((a, b) => rank[orderClass(a)] - rank[orderClass(b)]);
  const spots = [];
  const at = new Map(); // "o:" + order id / "c:" + caregiver id -> {x, y, x0, y0}
  for (const o of sortedOrders) {
    at.set("o:" + o.order_id, nudge(spots, x(o.lon), y(o.lat), orderClass(o) === "sos" ? SOS_MARK : MARK));
  }
  for (const c of placed) at.set("c:" + c.id, nudge(spots, x(c.lon), y(c.lat)));

  const lines = svg("g", { class: "lines" });
  for (const line of data.lines) {
    const o = at.get("o:" + line.order_id);
    const c = at.get("c:" + line.caregiver_id);
    if (!o || !c) continue;
    lines.append(svg("line", {
      class: "line " + line.kind,
      "data-line-order": line.order_id,
      x1: c.x, y1: c.y, x2: o.x, y2: o.y,
    }));
  }
  for (const p of at.values()) {
    if (p.x === p.x0 && p.y === p.y0) continue;
    lines.append(svg("line", { class: "leader", x1: p.x0, y1: p.y0, x2: p.x, y2: p.y }),
      svg("circle", { class: "leader-dot", cx: p.x0, cy: p.y0, r: 1.8 }));
  }
  root.append(lines);

  const people = svg("g", { class: "caregivers" });
  for (const c of placed) {
    const p = at.get("c:" + c.id);
    people.append(svg("g", {
      class: "mk cg " + c.state,
      transform: "translate(" + p.x.toFixed(1) + "," + p.y.toFixed(1) + ")",
      "data-caregiver-id": c.id,
      "data-state": c.state,
    },
    svg("title", {}, c.name + " · " + stateLabel(c.state) + (c.position_at ? " · " + words.hm(c.position_at, zone) : "")),
    SHAPES[c.state] ? SHAPES[c.state]() : SHAPES.idle(),
    ));
  }
  root.append(people);
  const labels = svg("g", { class: "labels", "aria-hidden": "true" });
  root.append(labels);

  // Open orders on top of caregivers, SOS above all (drawn last).
  const orders = svg("g", { class: "orders" });
  for (const o of [...sortedOrders].reverse()) {
    const cls = orderClass(o);
    const p = at.get("o:" + o.order_id);
    const g = svg("g", {
      class: "mk order " + cls + (o.order_id === selected ? " selected" : ""),
      transform: "translate(" + p.x.toFixed(1) + "," + p.y.toFixed(1) + ")",
      "data-order-id": o.order_id,
      "data-status": o.status,
      "data-priority": o.priority,
    },
    svg("title", {}, o.senior_name + " · " + words.priority(o.priority) + " · " + words.status(o.status)),
    );
    if (cls === "sos") g.append(svg("circle", { r: 13, class: "pulse" }));
    if (o.order_id === selected) g.append(svg("circle", { r: 12, class: "ring" }));
    g.append(SHAPES.order());
    if (cls !== "open") g.append(svg("text", { class: "glyph", y: 4, "text-anchor": "middle" }, cls === "sos" ? "!" : "?"));
    g.addEventListener("click", () => onOrder(o.order_id));
    orders.append(g);
  }
  root.append(orders);
  container.replaceChildren(root);

  // Caregivers' names, placed once the map is in the page (to measure them) where they cover
  // no marker and no other name: right, left, above, below, then further out.
  if (placed.length <= 40) {
    const taken = spots.map((p) => box(p.x - p.r, p.y - p.r, 2 * p.r, 2 * p.r));
    for (const c of placed) {
      const p = at.get("c:" + c.id);
      const text = svg("text", { class: "name" }, c.name);
      labels.append(text);
      // In the map's own units; estimated while the map is not displayed.
      let width = text.getComputedTextLength();
      if (!width) width = [...c.name].reduce((sum, ch) => sum + (ch.charCodeAt(0) > 0x2e80 ? 11 : 6.5), 0);
      width += 2;
      const best = labelSpot(p, width, taken);
      text.setAttribute("x", best.tx.toFixed(1));
      text.setAttribute("y", best.ty.toFixed(1));
      text.setAttribute("text-anchor", "start");
      text.dataset.labelFor = c.id;
      taken.push(best.box);
    }
  }
  return { orders: data.orders.length, caregivers: placed.length, unplaced: data.caregivers.length - placed.length };
}
