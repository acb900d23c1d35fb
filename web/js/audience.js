// The audience page: joins a room, plays the stage track through an <audio autoplay> element
// (Chromium decodes remote audio only for a playing element), shows who sings and who is next,
// and meters what is heard with WebAudio. Main thread; reconnection lives in encore.js's Listener.

import { Listener, summarizeStats } from './encore.js';
import { AudioProbe, createAudioContext, runMeter } from './audio.js';
import { $, initJoinForm, nameProblem, rememberName, renderRoomState, roomProblem, setBadge } from './ui.js';

const STATUS_TEXT = {
    connecting: ['connecting', 'warn'],
    joining: ['joining', 'warn'],
    subscribing: ['connecting audio', 'warn'],
    live: ['live', 'ok'],
    reconnecting: ['reconnecting', 'bad'],
    stopped: ['not connected', 'idle'],
    failed: ['refused', 'bad'],
};

let listener = null;
let ctx = null;
let probe = null;
let roomState = null;
let stopMeter = null;

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
    const name = $('name').value.trim() || 'guest-' + Math.floor(Math.random() * 10000);
    const problem = roomProblem(room) || nameProblem(name);
    $('join-error').textContent = problem;
    if (problem) {
        return;
    }
    rememberName(name);
    // Created inside the click so that browsers allow it to run.
    ctx = ctx || createAudioContext();
    ctx.resume();
    const player = $('player');
    player.volume = Number($('volume').value);
    listener = new Listener({ room, name, audio: player, onStatus, onRoomState, onStream });
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
    initJoinForm($('room'), $('name'));
    $('join-form').addEventListener('submit', join);
    $('leave').addEventListener('click', leave);
    $('volume').addEventListener('input', () => {
        $('player').volume = Number($('volume').value);
    });
});
