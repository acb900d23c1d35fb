// Encore protocol client (docs/protocol.md): one websocket per tab, request/response with ids and
// Promises, server events, and the publish/subscribe RTCPeerConnections with trickle ICE. Runs in
// the page's main thread; it knows the documented protocol only and never decides what the server
// must decide (who may sing, what the SDP answer says).

export const SUBPROTOCOL = 'encore.v1';

/** How long a request waits for its answer before it is rejected with code `timeout`. */
const REQUEST_TIMEOUT_MS = 10000;

/** The Opus parameters a singer asks for (RECIPES: the browser's sender follows the remote SDP,
 * which the server sets; these make our own offer say the same). */
export const PUBLISH_OPUS_FMTP = { stereo: '1', 'sprop-stereo': '1', maxaveragebitrate: '128000' };
/** A receiver decodes stereo only when its own SDP says `stereo=1`. */
export const SUBSCRIBE_OPUS_FMTP = { stereo: '1' };

/** An error answer from the server, or a local failure (`timeout`, `disconnected`). */
export class EncoreError extends Error {
    constructor(code, message, field) {
        super(message || code);
        this.name = 'EncoreError';
        this.code = code;
        if (field !== undefined) {
            this.field = field;
        }
    }
}

/** The websocket URL of the server that served this page: ws(s)://<host>/ws. */
export function defaultWsUrl(loc = window.location) {
    return (loc.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + loc.host + '/ws';
}

/** How long before a token expires it is refreshed: a fifth of its remaining life, 10 s to 5 min. */
function refreshLeadSeconds(remaining) {
    return Math.min(300, Math.max(10, remaining / 5));
}

/**
 * One websocket to the server. `request()` returns a Promise of the answer's `data`; errors reject
 * with an EncoreError carrying the server's `code`. `on(type, fn)` listens to server events
 * (`room.state`, `ice.candidate`, `peer.closed`, `gift`, `board`, `vip.entered`, ...) and to the
 * local pseudo-events `close` and `unauthorized` (any request was refused with that code: the
 * token is no longer good and the page must sign in again).
 */
export class Signaling {
    constructor(url = defaultWsUrl(), { log = console } = {}) {
        this.url = url;
        this.log = log;
        this.ws = null;
        this.nextId = 1;
        this.pending = new Map();
        this.listeners = new Map();
        this.closed = false;
        this.session = null;
        this.user = null;
        this.refreshTimer = null;
        this.refreshes = 0;
    }

    /**
     * The first request on every connection: presents `session.token` (`auth`) and resolves with the
     * answer's data ({user, expires}). From then on the token is refreshed ahead of its expiry with
     * `token.refresh`; the new token is stored with `session.update({token, expires})` and presented
     * again with `auth`, which extends this connection's session on the server.
     */
    async authenticate(session) {
        this.session = session;
        const data = await this.request('auth', { token: session.token });
        this.user = data.user || null;
        this.scheduleRefresh(Number.isInteger(data.expires) ? data.expires : session.expires);
        return data;
    }

    scheduleRefresh(expires) {
        clearTimeout(this.refreshTimer);
        const remaining = expires - Date.now() / 1000;
        const delay = Math.max(1, remaining - refreshLeadSeconds(remaining)) * 1000;
        // setTimeout's delay is a signed 32-bit number of milliseconds.
        this.refreshTimer = setTimeout(() => this.refreshToken().catch(() => {}), Math.min(delay, 0x7fffffff));
    }

    /**
     * Gets a fresh token now (the timer calls it; tests may too) and re-authenticates with it.
     * Resolves with the new {token, expires}. A connection that is gone does nothing (the next
     * connection authenticates with the stored token); any other failure is retried in 30 s.
     */
    async refreshToken() {
        clearTimeout(this.refreshTimer);
        this.refreshTimer = null;
        if (!this.session || !this.connected) {
            throw new EncoreError('disconnected', 'not connected');
        }
        try {
            const fresh = await this.request('token.refresh');
            this.session.update({ token: fresh.token, expires: fresh.expires });
            const data = await this.request('auth', { token: fresh.token });
            this.refreshes++;
            this.scheduleRefresh(Number.isInteger(data.expires) ? data.expires : fresh.expires);
            return fresh;
        } catch (e) {
            if (e.code !== 'unauthorized' && e.code !== 'disconnected' && this.connected) {
                this.log.warn('encore: token refresh failed, retrying in 30 s', e);
                this.refreshTimer = setTimeout(() => this.refreshToken().catch(() => {}), 30000);
            }
            throw e;
        }
    }

    /** Opens the socket; resolves once it is open, rejects if it closes first. */
    connect() {
        return new Promise((resolve, reject) => {
            let ws;
            try {
                ws = new WebSocket(this.url, SUBPROTOCOL);
            } catch (e) {
                reject(new EncoreError('disconnected', 'cannot open websocket: ' + e.message));
                return;
            }
            this.ws = ws;
            let opened = false;
            ws.onopen = () => {
                opened = true;
                resolve();
            };
            ws.onmessage = (ev) => this.onFrame(ev.data);
            ws.onclose = (ev) => {
                this.closed = true;
                clearTimeout(this.refreshTimer);
                this.refreshTimer = null;
                const err = new EncoreError('disconnected',
                    `websocket closed (code ${ev.code}${ev.reason ? ': ' + ev.reason : ''})`);
                for (const p of this.pending.values()) {
                    clearTimeout(p.timer);
                    p.reject(err);
                }
                this.pending.clear();
                if (!opened) {
                    reject(err);
                }
                this.emit('close', { code: ev.code, reason: ev.reason });
            };
            ws.onerror = () => {
                // A close event always follows; it carries what we can know.
            };
        });
    }

    get connected() {
        return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    onFrame(text) {
        let msg;
        try {
            msg = JSON.parse(text);
        } catch (e) {
            this.log.warn('encore: unparsable frame from server', text);
            return;
        }
        if (msg === null || typeof msg !== 'object' || typeof msg.type !== 'string') {
            this.log.warn('encore: malformed frame from server', text);
            return;
        }
        if ((msg.type === 'result' || msg.type === 'error') && msg.id !== undefined && msg.id !== null) {
            const p = this.pending.get(msg.id);
            if (!p) {
                this.log.warn('encore: answer to an unknown request', msg);
                return;
            }
            this.pending.delete(msg.id);
            clearTimeout(p.timer);
            if (msg.type === 'result') {
                p.resolve(msg.data === undefined ? {} : msg.data);
            } else {
                p.reject(new EncoreError(msg.code || 'internal', msg.message, msg.field));
                if (msg.code === 'unauthorized') {
                    this.emit('unauthorized', msg);
                }
            }
            return;
        }
        if (msg.type === 'error') {
            // An error without id answers a frame we sent without one (ice.candidate).
            this.log.warn(`encore: server error ${msg.code}: ${msg.message}`);
            if (msg.code === 'unauthorized') {
                this.emit('unauthorized', msg);
            }
        }
        if (msg.type === 'gifts' && Array.isArray(msg.items)) {
            // A busy room's gifts arrive batched (at most ten frames a second): one `gift` each.
            for (const item of msg.items) {
                this.emit('gift', Object.assign({ type: 'gift' }, item));
            }
            return;
        }
        this.emit(msg.type, msg);
    }

    /** Sends a request and resolves with the answer's `data`. */
    request(type, fields = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
        if (!this.connected) {
            return Promise.reject(new EncoreError('disconnected', 'not connected'));
        }
        const id = this.nextId++;
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                this.pending.delete(id);
                reject(new EncoreError('timeout', `no answer to ${type} within ${timeoutMs} ms`));
            }, timeoutMs);
            this.pending.set(id, { resolve, reject, timer });
            this.ws.send(JSON.stringify({ ...fields, type, id }));
        });
    }

    /** Sends a frame that wants no answer (ice.candidate). Returns false when not connected. */
    send(type, fields = {}) {
        if (!this.connected) {
            return false;
        }
        this.ws.send(JSON.stringify({ ...fields, type }));
        return true;
    }

    /** Listens to an event type; returns a function that removes the listener. */
    on(type, fn) {
        if (!this.listeners.has(type)) {
            this.listeners.set(type, new Set());
        }
        this.listeners.get(type).add(fn);
        return () => this.listeners.get(type).delete(fn);
    }

    emit(type, msg) {
        const set = this.listeners.get(type);
        if (!set) {
            return;
        }
        for (const fn of [...set]) {
            try {
                fn(msg);
            } catch (e) {
                this.log.error(`encore: ${type} listener failed`, e);
            }
        }
    }

    close() {
        clearTimeout(this.refreshTimer);
        this.refreshTimer = null;
        if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
            this.ws.close(1000, 'bye');
        }
    }
}

/**
 * One authenticated websocket for pages without a Listener (singer, agent, admin). `ready()` resolves
 * with a Signaling that has authenticated with `session`, opening a new one when there is none: a
 * lost connection is replaced on the next call. Listeners added with `on(type, fn)` are attached to
 * every connection it opens. `onClose(ev)` hears the loss of an authenticated connection;
 * `onUnauthorized(error)` a refused token (the page signs in again).
 */
export class Connection {
    constructor({ session, url = defaultWsUrl(), onClose = () => {}, onUnauthorized = () => {}, log = console }) {
        this.session = session;
        this.url = url;
        this.onClose = onClose;
        this.onUnauthorized = onUnauthorized;
        this.log = log;
        this.handlers = [];
        this.sig = null;
        this.opening = null;
    }

    on(type, fn) {
        this.handlers.push([type, fn]);
        if (this.sig) {
            this.sig.on(type, fn);
        }
    }

    /** The authenticated connection, or null when there is none right now. */
    get current() {
        return this.sig && this.sig.connected ? this.sig : null;
    }

    /** For moneyRequest(): the current connection; when there is none, starts opening one. */
    currentOrReconnect() {
        if (!this.current) {
            this.ready().catch((e) => this.log.warn('encore: reconnect failed', e));
        }
        return this.current;
    }

    ready() {
        if (this.current) {
            return Promise.resolve(this.sig);
        }
        if (!this.opening) {
            this.opening = this.open().finally(() => {
                this.opening = null;
            });
        }
        return this.opening;
    }

    async open() {
        if (!this.session.token) {
            throw new EncoreError('unauthorized', 'not signed in');
        }
        const sig = new Signaling(this.url, { log: this.log });
        await sig.connect();
        let refused = false;
        sig.on('unauthorized', (m) => {
            if (!refused) {
                refused = true;
                sig.close();
                this.onUnauthorized(new EncoreError('unauthorized', m.message));
            }
        });
        sig.on('close', (ev) => {
            if (this.sig === sig) {
                this.sig = null;
                this.onClose(ev);
            }
        });
        for (const [type, fn] of this.handlers) {
            sig.on(type, fn);
        }
        try {
            await sig.authenticate(this.session);
        } catch (e) {
            sig.close();
            throw e;
        }
        this.sig = sig;
        return sig;
    }

    close() {
        const sig = this.sig;
        this.sig = null;
        if (sig) {
            sig.close();
        }
    }
}

/** A fresh idempotency key for one user action that moves coins: 22 characters of [A-Za-z0-9_-]. */
export function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Failures after which the outcome is unknown or the server asks to try again with the same key. */
const MONEY_RETRYABLE = ['disconnected', 'timeout', 'unavailable'];
const MONEY_RETRY_MS = [500, 1000, 2000, 4000];
/** How long a money request waits for a usable connection (e.g. during a reconnect). */
const MONEY_WAIT_MS = 15000;

/**
 * Sends one money request (`gift.send`, `vip.buy`, `withdraw.request`) for one user action. The
 * idempotency key is made once here (or given as `key`) and sent on every try, so that a retry after
 * a lost answer or a reconnect can never move coins twice: the server answers it with the first
 * result (`replayed: true`). `getSig()` returns the Signaling to use now, or null while there is none
 * that can take the request (reconnecting, not yet joined); it is asked again before every try.
 * Resolves with the answer's data; rejects with the server's error, or the last failure once
 * `MONEY_RETRY_MS` is exhausted. `onRetry(error, attempt)` is told about each retry.
 */
export async function moneyRequest(getSig, type, fields, { key = newKey(), onRetry = () => {} } = {}) {
    for (let attempt = 0; ; attempt++) {
        let sig = getSig();
        const waitEnd = Date.now() + MONEY_WAIT_MS;
        while (!sig || !sig.connected) {
            if (Date.now() > waitEnd) {
                throw new EncoreError('disconnected', 'not connected to the server');
            }
            await new Promise((r) => setTimeout(r, 200));
            sig = getSig();
        }
        try {
            return await sig.request(type, { ...fields, key });
        } catch (e) {
            if (!MONEY_RETRYABLE.includes(e.code) || attempt >= MONEY_RETRY_MS.length) {
                throw e;
            }
            onRetry(e, attempt + 1);
            await new Promise((r) => setTimeout(r, MONEY_RETRY_MS[attempt]));
        }
    }
}

/**
 * Sets Opus fmtp parameters in every audio section of an SDP: existing keys are replaced, missing
 * ones appended, and an fmtp line is added if the Opus payload type has none. Touches nothing else.
 */
export function setOpusFmtp(sdp, params) {
    const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
    const lines = sdp.split(eol);
    const opusPts = new Set();
    for (const line of lines) {
        const m = /^a=rtpmap:(\d+) opus\/48000(\/2)?$/i.exec(line);
        if (m) {
            opusPts.add(m[1]);
        }
    }
    const seen = new Set();
    const out = [];
    for (const line of lines) {
        const m = /^a=fmtp:(\d+) (.*)$/.exec(line);
        if (m && opusPts.has(m[1])) {
            seen.add(m[1]);
            const kv = new Map();
            for (const part of m[2].split(';')) {
                const t = part.trim();
                if (t === '') {
                    continue;
                }
                const eq = t.indexOf('=');
                kv.set(eq < 0 ? t : t.slice(0, eq), eq < 0 ? '' : t.slice(eq + 1));
            }
            for (const [k, v] of Object.entries(params)) {
                kv.set(k, v);
            }
            out.push(`a=fmtp:${m[1]} ` + [...kv].map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join(';'));
            continue;
        }
        out.push(line);
        const r = /^a=rtpmap:(\d+) opus\/48000/i.exec(line);
        if (r && !lines.some((l) => l.startsWith(`a=fmtp:${r[1]} `))) {
            seen.add(r[1]);
            out.push(`a=fmtp:${r[1]} ` + Object.entries(params).map(([k, v]) => `${k}=${v}`).join(';'));
        }
    }
    return out.join(eol);
}

/**
 * One media peer (`publish` or `subscribe`) on a Signaling connection: one audio transceiver,
 * an offer with our Opus fmtp, the server's answer, and trickle ICE both ways. Local candidates
 * are held until the server has answered (so it knows the peer), remote ones until the answer is
 * applied. `negotiate({ iceRestart: true })` sends a new offer with new ICE credentials.
 */
export class MediaPeer {
    constructor(sig, role, { track = null, fmtp, log = console } = {}) {
        this.sig = sig;
        this.role = role;
        this.log = log;
        this.fmtp = fmtp || (role === 'publish' ? PUBLISH_OPUS_FMTP : SUBSCRIBE_OPUS_FMTP);
        this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
        this.answered = false;
        this.closed = false;
        this.localQueue = [];
        this.remoteQueue = [];
        this.negotiations = 0;
        this.signalingChanges = 0;
        if (role === 'publish') {
            this.transceiver = this.pc.addTransceiver(track, { direction: 'sendonly' });
        } else {
            this.transceiver = this.pc.addTransceiver('audio', { direction: 'recvonly' });
        }
        this.pc.onicecandidate = (ev) => this.onLocalCandidate(ev.candidate);
        this.pc.onsignalingstatechange = () => {
            this.signalingChanges++;
        };
        this.offSig = sig.on('ice.candidate', (m) => {
            if (m.pc === this.role) {
                this.onRemoteCandidate(m);
            }
        });
    }

    onLocalCandidate(c) {
        // A null candidate, or an empty one, ends the list: the server gets an empty string.
        const msg = { pc: this.role, candidate: c ? c.candidate : '' };
        if (c && c.sdpMid !== null && c.sdpMid !== undefined) {
            msg.sdpMid = c.sdpMid;
        } else {
            msg.sdpMid = this.transceiver.mid || '0';
        }
        if (this.answered) {
            this.sig.send('ice.candidate', msg);
        } else {
            this.localQueue.push(msg);
        }
    }

    onRemoteCandidate(m) {
        if (this.closed) {
            return;
        }
        if (!this.answered) {
            this.remoteQueue.push(m);
            return;
        }
        this.addRemote(m);
    }

    addRemote(m) {
        const init = { candidate: m.candidate || '' };
        if (m.sdpMid !== undefined && m.sdpMid !== null) {
            init.sdpMid = m.sdpMid;
        }
        if (m.sdpMLineIndex !== undefined && m.sdpMLineIndex !== null) {
            init.sdpMLineIndex = m.sdpMLineIndex;
        }
        if (init.sdpMid === undefined && init.sdpMLineIndex === undefined) {
            init.sdpMLineIndex = 0;
        }
        this.pc.addIceCandidate(init).catch((e) => {
            this.log.warn(`encore: ${this.role}: remote candidate refused: ${e.message}`, m.candidate);
        });
    }

    /** Sends an offer (a new one with new ICE credentials when iceRestart) and applies the answer. */
    async negotiate({ iceRestart = false } = {}) {
        if (this.closed) {
            throw new EncoreError('closed', `${this.role} peer is closed`);
        }
        this.answered = false;
        if (iceRestart) {
            this.pc.restartIce();
        }
        const offer = await this.pc.createOffer();
        const sdp = setOpusFmtp(offer.sdp, this.fmtp);
        await this.pc.setLocalDescription({ type: 'offer', sdp });
        this.negotiations++;
        const data = await this.sig.request(this.role, { sdp });
        if (this.closed) {
            throw new EncoreError('closed', `${this.role} peer closed while negotiating`);
        }
        if (!data || typeof data.sdp !== 'string') {
            throw new EncoreError('bad_message', `${this.role} answer has no sdp`);
        }
        await this.pc.setRemoteDescription({ type: 'answer', sdp: data.sdp });
        this.answered = true;
        for (const m of this.localQueue.splice(0)) {
            this.sig.send('ice.candidate', m);
        }
        for (const m of this.remoteQueue.splice(0)) {
            this.addRemote(m);
        }
        return data;
    }

    close() {
        if (this.closed) {
            return;
        }
        this.closed = true;
        this.offSig();
        this.pc.onicecandidate = null;
        this.pc.close();
    }
}

/**
 * A singer's publish peer: sends `track` (the voice/music mix) on the given connection. It tries
 * an ICE restart when ICE fails or stays disconnected; `onState(state)` reports the peer's
 * connectionState ('new', 'connecting', 'connected', 'failed', 'closed', ...).
 *
 * `serverPeer` tells whether the server may still hold a publish peer for this connection (it
 * answered a `publish` and has not sent `peer.closed`). The protocol has no "unpublish": a second
 * `publish` on the connection is an ICE restart of that peer, so a new RTCPeerConnection (new DTLS
 * certificate) must not be offered while `serverPeer` is true; `room.leave` closes the server's
 * peers (call `forgetServerPeer()` after it).
 */
export class Publisher {
    constructor(sig, track, { onState = () => {}, log = console } = {}) {
        this.sig = sig;
        this.track = track;
        this.onState = onState;
        this.log = log;
        this.peer = null;
        this.restartTimer = null;
        this.restarts = 0;
        this.serverPeer = false;
        this.failed = false;
        this.offClosed = sig.on('peer.closed', (m) => {
            if (m.pc !== 'publish') {
                return;
            }
            this.serverPeer = false;
            if (this.peer) {
                this.log.warn(`encore: publish peer closed by server: ${m.reason}`);
                this.stop();
                this.onState('closed');
            }
        });
    }

    /** After `room.leave`: the server closed this connection's peers. */
    forgetServerPeer() {
        this.serverPeer = false;
    }

    get state() {
        if (!this.peer) {
            return 'closed';
        }
        if (this.failed) {
            return 'failed';
        }
        return this.peer.answered ? this.peer.pc.connectionState : 'connecting';
    }

    /** Publishes with a new peer connection (see `serverPeer`). */
    async start() {
        if (this.serverPeer) {
            throw new EncoreError('busy', 'the server still holds the previous publish peer');
        }
        this.stop();
        this.failed = false;
        const peer = new MediaPeer(this.sig, 'publish', { track: this.track, log: this.log });
        this.peer = peer;
        peer.pc.onconnectionstatechange = () => {
            if (this.peer === peer) {
                this.onState(peer.pc.connectionState);
            }
        };
        peer.pc.oniceconnectionstatechange = () => this.watchIce(peer);
        this.onState('connecting');
        try {
            this.serverPeer = true; // from the moment the offer may reach the server
            await peer.negotiate();
        } catch (e) {
            if (e.code && e.code !== 'disconnected' && e.code !== 'timeout' && e.code !== 'closed') {
                this.serverPeer = false; // the server refused the offer: it holds no peer
            }
            if (this.peer === peer) {
                // While the server may hold a peer for us, keep ours: restart() can repair it
                // with an ICE restart on the same DTLS certificate.
                if (!this.serverPeer) {
                    this.stop();
                }
                this.failed = true;
                this.onState('failed');
            }
            throw e;
        }
    }

    /** Repairs the current peer with an ICE restart, or publishes anew when there is none. */
    async restart() {
        if (!this.peer) {
            return this.start();
        }
        this.failed = false;
        this.onState('connecting');
        try {
            await this.peer.negotiate({ iceRestart: true });
        } catch (e) {
            this.failed = true;
            this.onState('failed');
            throw e;
        }
    }

    watchIce(peer) {
        const s = peer.pc.iceConnectionState;
        if (s === 'connected' || s === 'completed') {
            clearTimeout(this.restartTimer);
            this.restartTimer = null;
            this.restarts = 0;
            return;
        }
        if ((s === 'disconnected' || s === 'failed') && !this.restartTimer && this.restarts < 2) {
            this.restartTimer = setTimeout(() => {
                this.restartTimer = null;
                if (this.peer !== peer || ['connected', 'completed'].includes(peer.pc.iceConnectionState)) {
                    return;
                }
                this.restarts++;
                this.log.warn('encore: publish ICE ' + peer.pc.iceConnectionState + ', restarting ICE');
                peer.negotiate({ iceRestart: true }).catch((e) => this.log.warn('encore: ICE restart failed', e));
            }, s === 'failed' ? 500 : 3000);
        }
    }

    stop() {
        clearTimeout(this.restartTimer);
        this.restartTimer = null;
        if (this.peer) {
            this.peer.close();
            this.peer = null;
        }
    }

    dispose() {
        this.stop();
        this.offClosed();
    }
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
/** Error codes that no retry of the same join or subscribe can fix. */
const PERMANENT_ERRORS = ['invalid_field', 'bad_message', 'unknown_type', 'forbidden', 'sdp_invalid', 'no_opus',
    'parse_error', 'too_large', 'too_deep', 'unauthorized'];
/** Room events a Listener passes to its page through `onEvent(type, msg)`. */
export const ROOM_EVENTS = ['gift', 'board', 'vip.entered'];
const BACKOFF_MAX_MS = 10000;
/** How long ICE may stay `disconnected` (or `failed`) before we act. */
const ICE_GRACE_MS = { disconnected: 3000, failed: 500 };
/** How long an ICE restart may take before the whole session is rebuilt. */
const ICE_RESTART_TIMEOUT_MS = 8000;

/**
 * A listener that stays connected: authenticates with `session` (see Signaling.authenticate), joins
 * `room` as `name`, subscribes, plays the stage track through `audio` (an <audio autoplay> element)
 * and repairs itself. On a lost ICE path it first
 * tries an ICE restart (a new `subscribe` offer on the same peer connection); on `peer.closed` it
 * subscribes with a new peer; on a closed websocket, or when the ICE restart does not help, it
 * reconnects with backoff and rejoins the same room.
 *
 * Callbacks: onStatus(status, detail) with status one of 'connecting', 'authenticating', 'joining',
 * 'subscribing', 'live', 'reconnecting', 'stopped', 'failed' (a refusal no retry can fix; detail
 * says why); onRoomState(msg); onStream(MediaStream); onJoined(data, sig) after every (re)join;
 * onEvent(type, msg) for ROOM_EVENTS; onUnauthorized(error) when the server refuses the token (the
 * listener has stopped; the page signs in again).
 */
export class Listener {
    constructor({ url = defaultWsUrl(), session = null, room, name, audio, onStatus = () => {},
        onRoomState = () => {}, onStream = () => {}, onJoined = () => {}, onEvent = () => {},
        onUnauthorized = () => {}, log = console } = {}) {
        this.url = url;
        this.session = session;
        this.room = room;
        this.name = name;
        this.audio = audio;
        this.onStatus = onStatus;
        this.onRoomState = onRoomState;
        this.onStream = onStream;
        this.onJoined = onJoined;
        this.onEvent = onEvent;
        this.onUnauthorized = onUnauthorized;
        this.log = log;
        this.sig = null;
        this.joinedSig = null; // this.sig once it has joined the room (money requests need that)
        this.peer = null;
        this.you = null;
        this.stopped = true;
        this.attempt = 0;
        this.reconnectTimer = null;
        this.iceTimer = null;
        this.restartTimer = null;
        this.status = 'stopped';
        // Counters the page exposes to tests: a hand-over must not move any of them.
        this.counters = { sessions: 0, peers: 0, subscribes: 0, iceRestarts: 0, reconnects: 0 };
    }

    start() {
        if (!this.stopped) {
            return;
        }
        this.stopped = false;
        this.connect();
    }

    /** The connection that has authenticated and joined the room, or null (e.g. while reconnecting). */
    get readySig() {
        return this.joinedSig && this.joinedSig === this.sig && this.sig.connected ? this.sig : null;
    }

    stop() {
        this.stopped = true;
        this.clearTimers();
        this.dropPeer();
        this.joinedSig = null;
        if (this.sig) {
            const sig = this.sig;
            this.sig = null;
            if (sig.connected) {
                sig.request('room.leave').catch(() => {}).finally(() => sig.close());
            } else {
                sig.close();
            }
        }
        this.setStatus('stopped');
    }

    setStatus(status, detail = '') {
        this.status = status;
        this.onStatus(status, detail);
    }

    clearTimers() {
        clearTimeout(this.reconnectTimer);
        clearTimeout(this.iceTimer);
        clearTimeout(this.restartTimer);
        this.reconnectTimer = this.iceTimer = this.restartTimer = null;
    }

    async connect() {
        this.clearTimers();
        this.setStatus('connecting');
        const sig = new Signaling(this.url, { log: this.log });
        this.sig = sig;
        this.counters.sessions++;
        try {
            await sig.connect();
            if (this.sig !== sig) {
                sig.close();
                return;
            }
            sig.on('close', (ev) => {
                if (this.sig === sig) {
                    this.scheduleReconnect(`websocket closed (${ev.code})`);
                }
            });
            sig.on('room.state', (m) => this.onRoomState(m));
            for (const type of ROOM_EVENTS) {
                sig.on(type, (m) => {
                    if (this.sig === sig) {
                        this.onEvent(type, m);
                    }
                });
            }
            sig.on('unauthorized', (m) => {
                if (this.sig === sig && !this.stopped) {
                    this.signedOut(new EncoreError('unauthorized', m.message));
                }
            });
            sig.on('peer.closed', (m) => {
                if (this.sig === sig && m.pc === 'subscribe') {
                    this.log.warn(`encore: subscribe peer closed by server: ${m.reason}`);
                    this.resubscribe(`peer closed: ${m.reason}`);
                }
            });
            if (this.session) {
                this.setStatus('authenticating');
                await sig.authenticate(this.session);
            }
            this.setStatus('joining');
            const joined = await sig.request('room.join', { room: this.room, name: this.name });
            this.you = joined.you;
            this.joinedSig = sig;
            this.onJoined(joined, sig);
            await this.subscribe();
        } catch (e) {
            if (this.sig === sig && !this.stopped) {
                this.log.warn('encore: listener session failed', e);
                if (e.code === 'unauthorized') {
                    this.signedOut(e);
                    return;
                }
                if (PERMANENT_ERRORS.includes(e.code)) {
                    // Retrying the same request cannot help (a bad room or name): give up and say why.
                    this.stop();
                    this.setStatus('failed', e.message);
                    return;
                }
                if (e.code && !['disconnected', 'timeout', 'internal', 'closed'].includes(e.code)) {
                    // The server refused us for a reason that may pass (room_full, rate_limited):
                    // keep retrying, but slowly.
                    this.attempt = Math.max(this.attempt, BACKOFF_MS.length - 1);
                }
                this.scheduleReconnect(e.message);
            }
        }
    }

    /** The server no longer accepts our token: stop for good and let the page sign in again. */
    signedOut(e) {
        this.stop();
        this.setStatus('failed', 'signed out: ' + e.message);
        this.onUnauthorized(e);
    }

    /** Creates a new subscribe peer on the current connection and negotiates it. */
    async subscribe() {
        this.dropPeer();
        const sig = this.sig;
        const peer = new MediaPeer(sig, 'subscribe', { log: this.log });
        this.peer = peer;
        this.counters.peers++;
        peer.pc.ontrack = (ev) => {
            const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
            if (this.audio) {
                this.audio.srcObject = stream;
                const p = this.audio.play();
                if (p) {
                    p.catch((e) => this.log.warn('encore: audio play refused', e));
                }
            }
            this.onStream(stream);
        };
        peer.pc.oniceconnectionstatechange = () => this.watchIce(peer);
        peer.pc.onconnectionstatechange = () => {
            if (this.peer === peer && peer.pc.connectionState === 'connected') {
                this.attempt = 0;
                this.setStatus('live');
            }
        };
        this.setStatus('subscribing');
        this.counters.subscribes++;
        await peer.negotiate();
    }

    async resubscribe(why) {
        if (this.stopped || !this.sig || !this.sig.connected) {
            return;
        }
        this.setStatus('reconnecting', why);
        try {
            await this.subscribe();
        } catch (e) {
            this.log.warn('encore: resubscribe failed', e);
            this.restartSession(e.message);
        }
    }

    watchIce(peer) {
        if (this.peer !== peer || this.stopped) {
            return;
        }
        const s = peer.pc.iceConnectionState;
        if (s === 'connected' || s === 'completed') {
            clearTimeout(this.iceTimer);
            clearTimeout(this.restartTimer);
            this.iceTimer = this.restartTimer = null;
            return;
        }
        if ((s === 'disconnected' || s === 'failed') && !this.iceTimer && !this.restartTimer) {
            this.iceTimer = setTimeout(() => {
                this.iceTimer = null;
                this.restartIce(peer);
            }, ICE_GRACE_MS[s]);
        }
    }

    /** First remedy for a lost path: an ICE restart on the same peer connection. */
    restartIce(peer) {
        const s = peer.pc.iceConnectionState;
        if (this.peer !== peer || this.stopped || s === 'connected' || s === 'completed') {
            return;
        }
        if (!this.sig || !this.sig.connected) {
            return; // the websocket's close handler is already reconnecting
        }
        this.setStatus('reconnecting', 'ICE ' + s + ', restarting ICE');
        this.counters.iceRestarts++;
        this.counters.subscribes++;
        this.restartTimer = setTimeout(() => {
            this.restartTimer = null;
            if (this.peer === peer && !['connected', 'completed'].includes(peer.pc.iceConnectionState)) {
                this.restartSession('ICE restart did not reconnect');
            }
        }, ICE_RESTART_TIMEOUT_MS);
        peer.negotiate({ iceRestart: true }).catch((e) => {
            this.log.warn('encore: ICE restart failed', e);
            if (this.peer === peer) {
                this.restartSession('ICE restart failed: ' + e.message);
            }
        });
    }

    /** Last remedy: a new websocket, a new join and a new peer. */
    restartSession(why) {
        if (this.stopped) {
            return;
        }
        const sig = this.sig;
        this.scheduleReconnect(why);
        if (sig) {
            sig.close();
        }
    }

    dropPeer() {
        if (this.peer) {
            this.peer.close();
            this.peer = null;
        }
    }

    scheduleReconnect(why) {
        if (this.stopped) {
            return;
        }
        this.clearTimers();
        this.dropPeer();
        this.sig = null;
        this.joinedSig = null;
        const base = this.attempt < BACKOFF_MS.length ? BACKOFF_MS[this.attempt] : BACKOFF_MAX_MS;
        const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
        this.attempt++;
        this.counters.reconnects++;
        this.setStatus('reconnecting', `${why}; retrying in ${(delay / 1000).toFixed(1)} s`);
        this.reconnectTimer = setTimeout(() => this.connect(), delay);
    }
}

/** Summarises an RTCPeerConnection's getStats() for display and tests (audio only). */
export async function summarizeStats(pc) {
    const out = { inbound: [], outbound: [], codecs: {}, pair: null };
    if (!pc) {
        return out;
    }
    const report = await pc.getStats();
    report.forEach((s) => {
        if (s.type === 'codec') {
            out.codecs[s.id] = { mimeType: s.mimeType, channels: s.channels, clockRate: s.clockRate,
                payloadType: s.payloadType, sdpFmtpLine: s.sdpFmtpLine };
        }
    });
    report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
            out.inbound.push({ ssrc: s.ssrc, packetsReceived: s.packetsReceived, packetsLost: s.packetsLost,
                bytesReceived: s.bytesReceived, jitter: s.jitter, totalSamplesReceived: s.totalSamplesReceived,
                concealedSamples: s.concealedSamples, audioLevel: s.audioLevel,
                totalAudioEnergy: s.totalAudioEnergy, codec: out.codecs[s.codecId] || null});
        } else if (s.type === 'remote-outbound-rtp' && s.kind === 'audio') {
            out.remoteOutbound = { ssrc: s.ssrc, remoteTimestamp: s.remoteTimestamp,
                reportsSent: s.reportsSent, packetsSent: s.packetsSent, bytesSent: s.bytesSent };
        } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
            out.outbound.push({ ssrc: s.ssrc, packetsSent: s.packetsSent, bytesSent: s.bytesSent,
                targetBitrate: s.targetBitrate, codec: out.codecs[s.codecId] || null });
        } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
            out.pair = { currentRoundTripTime: s.currentRoundTripTime, bytesSent: s.bytesSent,
                bytesReceived: s.bytesReceived };
        }
    });
    return out;
}
