// Small DOM helpers shared by the pages: form defaults from the URL, input checks that mirror the
// protocol's rules, and the room view (who sings, who is next, counts). Main thread; builds DOM
// with textContent only (names come from other people and are never parsed as HTML).

export const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function $(id) {
    return document.getElementById(id);
}

/** Why `name` is not a valid display name, or '' when it is (1-64 characters, no controls). */
export function nameProblem(name) {
    const chars = [...name];
    if (chars.length < 1 || chars.length > 64) {
        return 'Your name must be 1 to 64 characters.';
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) {
        return 'Your name may not contain control characters.';
    }
    return '';
}

/** Why `room` is not a valid room name, or '' when it is. */
export function roomProblem(room) {
    return ROOM_RE.test(room) ? '' : 'Room names are 1 to 64 letters, digits, "-" or "_".';
}

/** Fills the room and name fields from ?room= and ?name= (room defaults to "lobby"). */
export function initJoinForm(roomInput, nameInput) {
    const params = new URLSearchParams(window.location.search);
    roomInput.value = params.get('room') || roomInput.value || 'lobby';
    const name = params.get('name') || window.localStorage.getItem('encore.name') || '';
    nameInput.value = name;
}

export function rememberName(name) {
    try {
        window.localStorage.setItem('encore.name', name);
    } catch (e) {
        // Private mode: nothing to remember.
    }
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
    span.textContent = p.name || p.id;
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
