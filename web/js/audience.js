// The audience page: signs in, joins a room, plays the stage track through an <audio autoplay>
// element (Chromium decodes remote audio only for a playing element), shows who sings and who is
// next, meters what is heard with WebAudio, and holds the wallet, gift bar, gift feed and board.
// Main thread; reconnection lives in encore.js's Listener, money decisions on the server.

import { Listener, summarizeStats } from './encore.js';
import { Session } from './account.js';
import { AudioProbe, createAudioContext, runMeter } from './audio.js';
import { Gifts, stageUserId } from './gifts.js';
import { setUpAccount } from './signin.js';
import { Wallet } from './wallet.js';
import { $, initJoinForm, renderRoomState, roomProblem, setBadge } from './ui.js';

const STATUS_TEXT = {
    connecting: ['connecting', 'warn'],
    authenticating: ['signing in', 'warn'],
    joining: ['joining', 'warn'],
    subscribing: ['connecting audio', 'warn'],
    live: ['live', 'ok'],
    reconnecting: ['reconnecting', 'bad'],
    stopped: ['not connected', 'idle'],
    failed: ['refused', 'bad'],
};

const session = new Session();
let account = null;
let listener = null;
let ctx = null;
let probe = null;
let roomState = null;
let stopMeter = null;

const getSig = () => (listener ? listener.readySig : null);
const wallet = new Wallet({ session, getSig, onVip: (id, tier) => gifts.setVip(id, tier) });
const gifts = new Gifts({ getSig, me: () => session.user,
    stageUser: () => stageUserId(roomState && roomState.stage),
    // A gift answer may carry the new balance; otherwise ask for it.
    onSent: (r) => (Number.isInteger(r.balance) ? wallet.setBalance(r.balance) : wallet.refresh()) });

function onJoined() {
    // After every (re)join: what may have changed while we were away.
    wallet.refresh();
    gifts.loadBoard();
}

function onEvent(type, msg) {
    if (type === 'gift') {
        gifts.onGift(msg);
    } else if (type === 'board') {
        gifts.onBoard(msg);
    } else if (type === 'vip.entered') {
        gifts.onVipEntered(msg);
    }
}

function onStatus(status, detail) {
    const [text, kind] = STATUS_TEXT[status] || [status, 'warn'];
    setBadge($('status'), text, kind);
    $('status-detail').textContent = detail || '';
}

function onRoomState(state) {
    roomState = state;
    renderRoomState({ room: $('room-name'), stage: $('stage'), queue: $('queue'),
        listeners: $('listeners'), members: $('members') }, state, listener ? listener.you : null);
}

function onStream(stream) {
    // The element plays the sound; WebAudio only listens (it is not connected to the speakers).
    if (probe) {
        probe.disconnect();
    }
    probe = new AudioProbe(ctx, ctx.createMediaStreamSource(stream));
}

function join(ev) {
    ev.preventDefault();
    const room = $('room').value.trim();
    const problem = roomProblem(room);
    $('join-error').textContent = problem;
    if (problem || !session.valid) {
        return;
    }
    // Created inside the click so that browsers allow it to run.
    ctx = ctx || createAudioContext();
    ctx.resume();
    const player = $('player');
    player.volume = Number($('volume').value);
    listener = new Listener({ session, room, name: session.user.name, audio: player, onStatus, onRoomState,
        onStream, onJoined, onEvent,
        onUnauthorized: () => account.signOut('Your session has ended: please sign in again.') });
    wallet.load();
    gifts.load();
    $('room-name').textContent = room;
    $('singer-link').href = 'singer.html?room=' + encodeURIComponent(room);
    $('join-form').classList.add('hidden');
    $('room-view').classList.remove('hidden');
    const url = new URL(window.location.href);
    url.searchParams.set('room', room);
    window.history.replaceState(null, '', url);
    listener.start();
    stopMeter = runMeter(() => probe, $('level'), $('level-label'));
}

function leave() {
    if (listener) {
        listener.stop();
        listener = null;
    }
    if (stopMeter) {
        stopMeter();
        stopMeter = null;
    }
    if (probe) {
        probe.disconnect();
        probe = null;
    }
    $('player').srcObject = null;
    $('room-view').classList.add('hidden');
    $('join-form').classList.toggle('hidden', !session.valid);
}

function signedIn() {
    $('join-as').textContent = session.user.name;
    $('join-form').classList.remove('hidden');
}

// A read-only hook for the end-to-end test (tests/e2e): state, counters and measurements.
window.encoreTest = {
    get status() {
        return listener ? listener.status : 'stopped';
    },
    get you() {
        return listener ? listener.you : null;
    },
    get roomState() {
        return roomState;
    },
    get user() {
        return session.user;
    },
    get wallet() {
        return wallet.state;
    },
    get gifts() {
        return gifts.events;
    },
    get board() {
        return gifts.board;
    },
    get token() {
        return session.token;
    },
    /** Asks the server for the wallet again (wallet.get) and resolves with what it answered. */
    async refreshWallet() {
        await wallet.refresh();
        return wallet.state;
    },
    /** Sends any request on the room connection: resolves 'ok' or the error code (tests check refusals). */
    async tryRequest(type, fields) {
        try {
            await listener.readySig.request(type, fields);
            return 'ok';
        } catch (e) {
            return e.code || String(e);
        }
    },
    /** Refreshes the token now (as the timer does ahead of expiry); resolves {token, expires}. */
    refreshToken() {
        return listener && listener.sig ? listener.sig.refreshToken() : Promise.reject(new Error('no connection'));
    },
    /** Counters that a change of singer must not move (same peer connection, no new offer). */
    peer() {
        if (!listener || !listener.peer) {
            return null;
        }
        const p = listener.peer;
        return { ...listener.counters, negotiations: p.negotiations, signalingChanges: p.signalingChanges,
            signalingState: p.pc.signalingState, iceConnectionState: p.pc.iceConnectionState,
            connectionState: p.pc.connectionState };
    },
    /** The subscribe RTCPeerConnection itself, so a test can tell whether it was replaced. */
    pc() {
        return listener && listener.peer ? listener.peer.pc : null;
    },
    stats() {
        return summarizeStats(listener && listener.peer ? listener.peer.pc : null);
    },
    peak() {
        return probe ? probe.peak() : null;
    },
    /** Replaces the token the tab holds (tests: a forged or expired token must lead back to sign-in). */
    setToken(token) {
        session.update({ token, expires: session.expires });
    },
    /** Closes this tab's websocket as a network failure would; the Listener must recover. */
    dropSocket() {
        if (listener && listener.sig && listener.sig.ws) {
            listener.sig.ws.close(4000, 'test: simulated drop');
        }
    },
    level() {
        return probe ? probe.level() : null;
    },
    channelRms() {
        return probe ? probe.channelRms() : null;
    },
};

document.addEventListener('DOMContentLoaded', () => {
    initJoinForm($('room'));
    account = setUpAccount({ session, panel: $('account-panel'), bar: $('account-bar'), role: 'listener',
        title: 'Sign in to listen', onSignedIn: signedIn, onSignedOut: leave });
    $('join-form').addEventListener('submit', join);
    $('leave').addEventListener('click', leave);
    $('volume').addEventListener('input', () => {
        $('player').volume = Number($('volume').value);
    });
});
