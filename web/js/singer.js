// The singer page: signs in (new accounts are singers), captures the microphone without voice
// processing, mixes it in WebAudio with an optional backing track, and publishes the mix as soon as
// the singer joins the mic queue (the server forwards only the singer on stage, so the hand-over is
// instant); shows earnings, withdrawals and contract offers. Main thread; the server decides who is
// on stage and what anyone earns, this page only shows it.

import { Connection, Publisher, summarizeStats } from './encore.js';
import { Session } from './account.js';
import { AudioProbe, createAudioContext, runMeter } from './audio.js';
import { Contracts } from './contracts.js';
import { Earnings } from './earnings.js';
import { setUpAccount } from './signin.js';
import { $, h, initJoinForm, renderRoomState, roomProblem, setBadge, showError, vipBadge } from './ui.js';

/** Music-quality capture (RECIPES: voice processing damages tones and music). */
const MIC_CONSTRAINTS = {
    echoCancellation: false,
    noiseSuppression: false,
    autoGainControl: false,
    channelCount: { ideal: 2 },
};

const PUB_TEXT = {
    new: ['starting', 'warn'],
    connecting: ['connecting', 'warn'],
    connected: ['connected', 'ok'],
    disconnected: ['interrupted', 'bad'],
    failed: ['failed', 'bad'],
    closed: ['off', 'idle'],
};

const audio = {
    ctx: null,
    mic: null,
    voiceGain: null,
    musicGain: null,
    mix: null,
    dest: null,
    probe: null,
    buffer: null,
    source: null,
};
const session = new Session();
let account = null;
const conn = new Connection({ session, onClose: onClosed,
    onUnauthorized: () => account.signOut('Your session has ended: please sign in again.') });
const earnings = new Earnings(conn);
const contracts = new Contracts(conn, 'singer');
let sig = null; // the connection this page joined the room on
let publisher = null;
let you = null;
let joined = null; // {room, name} as joined, for rejoin()
let roomState = null;
let busy = false;

function onStage() {
    return !!(roomState && roomState.stage && you && roomState.stage.id === you);
}

function queuePosition() {
    if (!roomState || !Array.isArray(roomState.queue)) {
        return 0;
    }
    const i = roomState.queue.findIndex((p) => p.id === you);
    return i < 0 ? 0 : i + 1;
}

function publishState() {
    return publisher ? publisher.state : 'closed';
}

/** Brings every button and label in line with the room state and the publisher. */
function refresh() {
    const stage = onStage();
    const pos = queuePosition();
    const inLine = stage || pos > 0;
    const pub = publishState();
    $('on-stage').classList.toggle('hidden', !stage);
    $('position').textContent = stage ? 'on stage' : pos > 0 ? `#${pos} in the queue` : 'not in the queue';
    let [text, kind] = PUB_TEXT[pub] || [pub, 'warn'];
    if (pub === 'connected') {
        text = stage ? 'live' : 'ready, waiting for your turn';
    }
    setBadge($('pub-state'), text, kind);
    const pubUp = ['new', 'connecting', 'connected'].includes(pub);
    $('queue-join').disabled = busy || inLine;
    $('go-live').disabled = busy || !inLine || pubUp;
    $('stop').disabled = busy || (!inLine && !pubUp);
}

function onRoomState(state) {
    roomState = state;
    renderRoomState({ room: $('room-name'), stage: $('stage'), queue: $('queue'),
        listeners: $('listeners'), members: $('members') }, state, you);
    refresh();
}

/** Microphone -> voice gain -> mix -> stream destination; music gain joins the mix later. */
async function setUpAudio() {
    if (audio.ctx) {
        return;
    }
    const ctx = createAudioContext();
    await ctx.resume();
    const mic = await navigator.mediaDevices.getUserMedia({ audio: MIC_CONSTRAINTS, video: false });
    audio.ctx = ctx;
    audio.mic = mic;
    audio.voiceGain = new GainNode(ctx, { gain: Number($('voice-volume').value) });
    audio.musicGain = new GainNode(ctx, { gain: Number($('music-volume').value) });
    audio.mix = new GainNode(ctx, { gain: 1, channelCount: 2, channelCountMode: 'explicit',
        channelInterpretation: 'speakers' });
    audio.dest = ctx.createMediaStreamDestination();
    audio.dest.channelCount = 2;
    ctx.createMediaStreamSource(mic).connect(audio.voiceGain);
    audio.voiceGain.connect(audio.mix);
    audio.musicGain.connect(audio.mix);
    // The singer hears the music (not their own voice, which would echo) on their headphones.
    audio.musicGain.connect(ctx.destination);
    audio.mix.connect(audio.dest);
    audio.probe = new AudioProbe(ctx, audio.mix);
    runMeter(() => audio.probe, $('level'), $('level-label'));
}

async function join(ev) {
    ev.preventDefault();
    const room = $('room').value.trim();
    const problem = roomProblem(room);
    showError($('join-error'), problem ? new Error(problem) : null);
    if (problem || !session.valid) {
        return;
    }
    const name = session.user.name;
    $('join').disabled = true;
    setBadge($('status'), 'connecting', 'warn');
    try {
        await setUpAudio();
    } catch (e) {
        showError($('join-error'), new Error('The microphone is not available: ' + e.message));
        setBadge($('status'), 'not connected', 'idle');
        $('join').disabled = false;
        return;
    }
    try {
        const s = await conn.ready();
        const data = await s.request('room.join', { room, name });
        sig = s;
        you = data.you;
        joined = { room, name };
    } catch (e) {
        showError($('join-error'), e);
        setBadge($('status'), 'not connected', 'idle');
        $('join').disabled = false;
        return;
    }
    publisher = new Publisher(sig, audio.dest.stream.getAudioTracks()[0], { onState: refresh });
    setBadge($('status'), 'connected', 'ok');
    $('room-name').textContent = room;
    $('audience-link').href = './?room=' + encodeURIComponent(room);
    $('join-form').classList.add('hidden');
    $('room-view').classList.remove('hidden');
    const url = new URL(window.location.href);
    url.searchParams.set('room', room);
    window.history.replaceState(null, '', url);
    refresh();
}

function onClosed(e) {
    if (!sig) {
        return;
    }
    sig = null;
    if (publisher) {
        publisher.dispose();
        publisher = null;
    }
    you = null;
    roomState = null;
    setBadge($('status'), 'disconnected', 'bad');
    $('room-view').classList.add('hidden');
    $('join-form').classList.toggle('hidden', !session.valid);
    $('join').disabled = false;
    showError($('join-error'), new Error(`The connection was lost (${e.code}). Join again to sing.`));
}

/** Leaves the room (when signing out): the connection goes too. */
function leaveAll() {
    if (publisher) {
        publisher.dispose();
        publisher = null;
    }
    sig = null;
    you = null;
    roomState = null;
    conn.close();
    setBadge($('status'), 'not connected', 'idle');
    $('room-view').classList.add('hidden');
    $('money-view').classList.add('hidden');
    $('join-form').classList.add('hidden');
    $('join').disabled = false;
}

function signedIn() {
    $('join-as').textContent = session.user.name;
    $('join-form').classList.toggle('hidden', !!sig);
    $('money-view').classList.remove('hidden');
    earnings.refresh();
    contracts.refresh();
}

/** A gift for the singer on stage: a line in the feed, and the earnings that follow from it. */
function onGift(m) {
    const from = (m.from && m.from.name) || '';
    const li = h('li', { className: `gift-item tier-${m.tier || 1}`, dataset: { transfer: String(m.transfer),
        from: String(m.from ? m.from.id : ''), fromName: from, gift: m.gift, count: String(m.count),
        combo: String(m.combo) } },
    vipBadge(m.from && m.from.vip), h('strong', { className: 'who' }, from), ` sent ${m.count} × ${m.name || m.gift}`,
    h('span', { className: 'gift-combo' }, ` combo ×${m.combo}`));
    $('gift-feed').prepend(li);
    while ($('gift-feed').children.length > 50) {
        $('gift-feed').lastElementChild.remove();
    }
    if (session.user && m.to && m.to.id === session.user.id) {
        earnings.refreshSoon();
    }
}

/** Runs one button's action with the buttons disabled, showing any error. */
async function act(fn) {
    busy = true;
    refresh();
    showError($('action-error'), null);
    try {
        await fn();
    } catch (e) {
        console.warn('encore: action failed', e);
        showError($('action-error'), e);
    } finally {
        busy = false;
        refresh();
    }
}

/**
 * Leaves and rejoins the room on the same connection: `room.leave` is the protocol's only way to
 * make the server drop our publish peer at once (a second `publish` would be an ICE restart of it).
 */
async function rejoin() {
    await sig.request('room.leave');
    publisher.forgetServerPeer();
    const data = await sig.request('room.join', { room: joined.room, name: joined.name });
    you = data.you;
}

function joinQueue() {
    return act(async () => {
        if (publisher.serverPeer) {
            await rejoin();
        }
        await sig.request('queue.join');
        // Connect at once, so that our turn starts without any delay.
        await publisher.start();
    });
}

function goLive() {
    // Repairs the connection we have (ICE restart) or publishes anew after the server closed it.
    return act(() => publisher.restart());
}

function stop() {
    return act(async () => {
        try {
            if (onStage()) {
                await sig.request('queue.advance');
            } else if (queuePosition() > 0) {
                await sig.request('queue.leave');
            }
        } finally {
            publisher.stop();
        }
        if (publisher.serverPeer) {
            await rejoin();
        }
    });
}

async function loadTrack() {
    const file = $('track-file').files[0];
    stopTrack();
    audio.buffer = null;
    $('track-play').disabled = true;
    if (!file) {
        $('track-info').textContent = 'No track: only your voice is sent.';
        return;
    }
    $('track-info').textContent = `Decoding ${file.name}...`;
    try {
        const bytes = await file.arrayBuffer();
        audio.buffer = await audio.ctx.decodeAudioData(bytes);
        const secs = Math.round(audio.buffer.duration);
        $('track-info').textContent = `${file.name}: ${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, '0')}, ` +
            `${audio.buffer.numberOfChannels === 1 ? 'mono' : 'stereo'}`;
        $('track-play').disabled = false;
    } catch (e) {
        $('track-info').textContent = `Cannot play ${file.name}: ${e.message || 'unsupported format'}`;
    }
}

function playTrack() {
    if (!audio.buffer) {
        return;
    }
    stopTrack();
    const src = new AudioBufferSourceNode(audio.ctx, { buffer: audio.buffer });
    src.connect(audio.musicGain);
    src.onended = () => {
        if (audio.source === src) {
            audio.source = null;
            $('track-stop').disabled = true;
        }
    };
    src.start();
    audio.source = src;
    $('track-stop').disabled = false;
}

function stopTrack() {
    if (audio.source) {
        const src = audio.source;
        audio.source = null;
        src.stop();
        src.disconnect();
    }
    $('track-stop').disabled = true;
}

function setGain(node, value) {
    if (node) {
        node.gain.setTargetAtTime(Number(value), audio.ctx.currentTime, 0.02);
    }
}

// A read-only hook for the end-to-end test (tests/e2e).
window.encoreTest = {
    get you() {
        return you;
    },
    get user() {
        return session.user;
    },
    get earnings() {
        return earnings.balance;
    },
    get contracts() {
        return contracts.contracts;
    },
    get roomState() {
        return roomState;
    },
    get onStage() {
        return onStage();
    },
    get position() {
        return queuePosition();
    },
    get publishState() {
        return publishState();
    },
    stats() {
        return summarizeStats(publisher && publisher.peer ? publisher.peer.pc : null);
    },
    level() {
        return audio.probe ? audio.probe.level() : null;
    },
    peak() {
        return audio.probe ? audio.probe.peak() : null;
    },
};

document.addEventListener('DOMContentLoaded', () => {
    initJoinForm($('room'));
    conn.on('room.state', onRoomState);
    conn.on('gift', onGift);
    $('contracts-refresh').addEventListener('click', () => contracts.refresh());
    account = setUpAccount({ session, panel: $('account-panel'), bar: $('account-bar'), role: 'singer',
        title: 'Sign in to sing', onSignedIn: signedIn, onSignedOut: leaveAll });
    $('join-form').addEventListener('submit', join);
    $('queue-join').addEventListener('click', joinQueue);
    $('go-live').addEventListener('click', goLive);
    $('stop').addEventListener('click', stop);
    $('track-file').addEventListener('change', loadTrack);
    $('track-play').addEventListener('click', playTrack);
    $('track-stop').addEventListener('click', stopTrack);
    $('voice-volume').addEventListener('input', (e) => setGain(audio.voiceGain, e.target.value));
    $('music-volume').addEventListener('input', (e) => setGain(audio.musicGain, e.target.value));
});
