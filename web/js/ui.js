// Small DOM helpers shared by the pages: form defaults from the URL, input checks that mirror the
// protocol's rules, the room view (who sings, who is next, counts), error messages, coins and VIP
// badges. Main thread; builds DOM with textContent only (names come from other people and are
// never parsed as HTML).

export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function $(id) {
    return document.getElementById(id);
}

/** Why `room` is not a valid room name, or '' when it is. */
export function roomProblem(room) {
    return ROOM_RE.test(room) ? '' : 'Room names are 1 to 64 letters, digits, "-" or "_".';
}

/** Fills the room field from ?room= (default "lobby"). */
export function initJoinForm(roomInput) {
    const params = new URLSearchParams(window.location.search);
    roomInput.value = params.get('room') || roomInput.value || 'lobby';
}

/**
 * Renders a `room.state` event into the elements of `view`:
 * {stage, queue (an <ol>), listeners, members, room} (each optional). `you` marks the reader.
 */
export function renderRoomState(view, state, you) {
    if (view.room) {
        view.room.textContent = state.room || '';
    }
    if (view.stage) {
        view.stage.textContent = '';
        if (state.stage) {
            view.stage.append(personLabel(state.stage, you));
            view.stage.classList.remove('empty');
        } else {
            view.stage.textContent = 'Nobody is singing';
            view.stage.classList.add('empty');
        }
    }
    if (view.queue) {
        view.queue.textContent = '';
        const queue = Array.isArray(state.queue) ? state.queue : [];
        for (const p of queue) {
            const li = document.createElement('li');
            li.append(personLabel(p, you));
            view.queue.append(li);
        }
        if (queue.length === 0) {
            const li = document.createElement('li');
            li.className = 'empty';
            li.textContent = 'Nobody is waiting';
            view.queue.append(li);
        }
    }
    if (view.listeners) {
        view.listeners.textContent = String(state.listeners ?? 0);
    }
    if (view.members) {
        view.members.textContent = String(state.members ?? 0);
    }
}

function personLabel(p, you) {
    const span = document.createElement('span');
    span.className = 'person';
    const badge = vipBadge(p.vip);
    if (badge) {
        span.append(badge);
    }
    span.append(p.name || p.id);
    if (p.id === you) {
        const tag = document.createElement('span');
        tag.className = 'tag';
        tag.textContent = 'you';
        span.append(' ', tag);
    }
    return span;
}

/** Shows a status badge: `kind` is one of ok, warn, bad, idle. */
export function setBadge(el, text, kind) {
    el.textContent = text;
    el.className = 'badge ' + kind;
}

/** Short explanations of the server's error codes that people meet on the money pages. */
const ERROR_TEXT = {
    unauthorized: 'Please sign in again.',
    forbidden: 'Your account may not do this.',
    insufficient_funds: 'Not enough coins.',
    daily_cap: 'You have reached today\'s spending limit.',
    under_age: 'Accounts under 18 cannot buy coins, send gifts or buy VIP status.',
    unknown_gift: 'That gift is not available.',
    unknown_tier: 'That VIP tier is not available.',
    bad_count: 'That number of gifts is not allowed.',
    not_on_stage: 'Nobody is on stage to receive gifts.',
    self_gift: 'You cannot send gifts to yourself.',
    too_expensive: 'That is more than one gift may cost.',
    unavailable: 'The server could not record this right now; please try again.',
    not_found: 'Not found.',
    conflict: 'That conflicts with what already exists.',
    name_taken: 'That name is taken.',
    bad_name: 'That name is not allowed.',
    weak_password: 'The password is too weak (at least 8 characters).',
    bad_birth_year: 'That birth year is not valid.',
    bad_credentials: 'Wrong name or password.',
    disabled: 'This account is disabled.',
    rate_limited: 'Too many attempts; wait a moment.',
    disconnected: 'Not connected to the server.',
    timeout: 'The server did not answer in time.',
};

/**
 * Shows an error in `el` (a role="alert" element): a short explanation and the server's code in
 * parentheses; `data-code` holds the code alone. A null `e` clears it.
 */
export function showError(el, e) {
    if (!e) {
        el.textContent = '';
        delete el.dataset.code;
        return;
    }
    const code = e.code || '';
    const text = ERROR_TEXT[code] || e.message || String(e);
    el.textContent = code ? `${text} (${code})` : text;
    if (code) {
        el.dataset.code = code;
    } else {
        delete el.dataset.code;
    }
}

/** Creates an element: `h('li', {className: 'x', dataset: {id: 1}}, 'text', child)`. Text is never HTML. */
export function h(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
        if (k === 'dataset') {
            Object.assign(el.dataset, v);
        } else if (k.startsWith('aria-') || k === 'role' || k === 'for') {
            el.setAttribute(k, v);
        } else {
            el[k] = v;
        }
    }
    el.append(...children.filter((c) => c !== null && c !== undefined && c !== false));
    return el;
}

/** "1 coin", "1,250 coins". */
export function coins(n) {
    return `${Number(n).toLocaleString('en-US')} ${n === 1 ? 'coin' : 'coins'}`;
}

/** A Unix time (seconds) as a local date and time. */
export function dateTime(unix) {
    return new Date(unix * 1000).toLocaleString();
}

/** A VIP badge for a tier id ("gold"), or null when there is none. */
export function vipBadge(tier) {
    if (!tier) {
        return null;
    }
    return h('span', { className: `vip vip-${tier}`, title: `VIP ${tier}`, dataset: { vip: tier } },
        `VIP ${tier}`);
}
