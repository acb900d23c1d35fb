// The audience's gift bar (one button per catalog gift, a count), the room's gift feed with a small
// CSS animation, the combo counter and the top-gifters board. Main thread; the feed shows only
// `gift` events (sent after the ledger committed), and the board only what the server ranks.

import { getCatalog } from './account.js';
import { moneyRequest } from './encore.js';
import { $, coins, h, showError, vipBadge } from './ui.js';

const FEED_MAX = 50;

/** The user id of the singer on stage in a `room.state` (`stage.user` as a number or {id}). */
export function stageUserId(stage) {
    if (!stage) {
        return null;
    }
    const u = stage.user;
    if (Number.isInteger(u)) {
        return u;
    }
    if (u && Number.isInteger(u.id)) {
        return u.id;
    }
    return Number.isInteger(stage.user_id) ? stage.user_id : null;
}

export class Gifts {
    /**
     * `getSig()` gives the joined connection (or null); `me()` the signed-in user; `stageUser()` the
     * singer's user id (or null); `onSent(result)` hears each committed gift of ours.
     */
    constructor({ getSig, me, stageUser, onSent = () => {} }) {
        this.getSig = getSig;
        this.me = me;
        this.stageUser = stageUser;
        this.onSent = onSent;
        this.catalog = null;
        this.events = [];          // every gift event seen, oldest first (tests read it)
        this.seen = new Set();     // transfer ids already in the feed
        this.vip = new Map();      // user id -> VIP tier, from events and the wallet
        this.board = [];           // the last show board
        this.sending = 0;
        for (const b of document.querySelectorAll('.presets [data-count]')) {
            b.addEventListener('click', () => {
                $('gift-count').value = b.dataset.count;
            });
        }
        $('board-scope').addEventListener('change', () => this.loadBoard());
    }

    async load() {
        try {
            this.catalog = await getCatalog();
        } catch (e) {
            showError($('gift-error'), e);
            return;
        }
        if (Number.isInteger(this.catalog.max_count)) {
            $('gift-count').max = String(this.catalog.max_count);
        }
        const gifts = Array.isArray(this.catalog.gifts) ? this.catalog.gifts : [];
        $('gifts').replaceChildren(...gifts.map((g) => {
            const b = h('button', { type: 'button', className: `gift tier-${g.tier || 1}`,
                dataset: { gift: g.id, price: String(g.price) },
                'aria-label': `Send ${g.name}, ${coins(g.price)} each` },
            h('span', { className: 'gift-name' }, g.name), h('span', { className: 'gift-price' }, coins(g.price)));
            b.addEventListener('click', () => this.send(g));
            return b;
        }));
    }

    setVip(userId, tier) {
        if (tier) {
            this.vip.set(userId, tier);
        } else {
            this.vip.delete(userId);
        }
    }

    /** Sends `count` of gift `g` to the singer on stage: one user action, one idempotency key. */
    async send(g) {
        const count = Number($('gift-count').value);
        showError($('gift-error'), null);
        if (!Number.isInteger(count) || count < 1) {
            showError($('gift-error'), { code: 'bad_count' });
            return;
        }
        const to = this.stageUser();
        if (to === null) {
            showError($('gift-error'), { code: 'not_on_stage' });
            return;
        }
        this.sending++;
        try {
            const r = await moneyRequest(this.getSig, 'gift.send', { gift: g.id, count, to });
            const el = $('gift-result');
            el.textContent = `Sent ${count} × ${g.name} (${coins(r.coins ?? g.price * count)}). Combo ×${r.combo}` +
                (r.replayed ? ' (already sent)' : '');
            Object.assign(el.dataset, { gift: g.id, count: String(count), combo: String(r.combo),
                transfer: String(r.transfer) });
            this.showCombo(this.me().name, g.name, r.combo);
            this.onSent(r);
        } catch (e) {
            showError($('gift-error'), e);
        } finally {
            this.sending--;
        }
    }

    showCombo(who, giftName, combo) {
        const el = $('combo');
        el.textContent = `${who}: ${giftName} combo ×${combo}`;
        el.dataset.combo = String(combo);
        el.classList.remove('hidden', 'bump');
        void el.offsetWidth; // restart the animation
        el.classList.add('bump');
    }

    /** A `gift` event: adds it to the feed (once per transfer) with a small animation. */
    onGift(m) {
        if (!m || this.seen.has(m.transfer)) {
            return;
        }
        this.seen.add(m.transfer);
        this.events.push(m);
        const from = m.from || {};
        if (from.vip) {
            this.vip.set(from.id, from.vip);
        }
        const li = h('li', { className: `gift-item tier-${m.tier || 1} anim-${m.animation || 'plain'}`,
            dataset: { transfer: String(m.transfer), from: String(from.id), fromName: from.name || '',
                gift: m.gift, count: String(m.count), combo: String(m.combo) } },
        vipBadge(from.vip), h('strong', { className: 'who' }, from.name || `#${from.id}`), ' sent ',
        h('span', { className: 'gift-what' }, `${m.count} × ${m.name || m.gift}`),
        m.to && m.to.name ? ` to ${m.to.name}` : '',
        h('span', { className: 'gift-combo' }, ` combo ×${m.combo}`));
        const feed = $('gift-feed');
        feed.prepend(li);
        while (feed.children.length > FEED_MAX) {
            feed.lastElementChild.remove();
        }
        $('gift-feed-empty').classList.add('hidden');
        this.showCombo(from.name || `#${from.id}`, m.name || m.gift, m.combo);
    }

    /** A `vip.entered` event: a line in the feed and the badge from now on. */
    onVipEntered(m) {
        const u = m.user || {};
        this.vip.set(u.id, u.vip);
        const li = h('li', { className: 'gift-item vip-entered', dataset: { vipEntered: String(u.id) } },
            vipBadge(u.vip), h('strong', { className: 'who' }, u.name || `#${u.id}`), ' joined the room');
        $('gift-feed').prepend(li);
        $('gift-feed-empty').classList.add('hidden');
        this.renderBoard();
    }

    /** A `board` event: the show board of the room. */
    onBoard(m) {
        this.board = Array.isArray(m.entries) ? m.entries : [];
        if ($('board-scope').value === 'show') {
            this.renderBoard(this.board);
        }
    }

    renderBoard(entries = $('board-scope').value === 'show' ? this.board : this.shown || []) {
        this.shown = entries;
        const ol = $('board');
        ol.replaceChildren(...entries.map((e) => h('li', { dataset: { user: String(e.user), coins: String(e.coins) } },
            vipBadge(this.vip.get(e.user)), h('span', { className: 'who' }, e.name || `#${e.user}`), ' ',
            h('span', { className: 'board-coins' }, coins(e.coins)))));
        if (entries.length === 0) {
            ol.append(h('li', { className: 'empty' }, 'No gifts yet'));
        }
    }

    /** Asks for the board the select names (`show` of this room, or all rooms today/this week). */
    async loadBoard() {
        const sig = this.getSig();
        if (!sig) {
            return;
        }
        const scope = $('board-scope').value;
        const req = scope === 'show' ? { scope: 'show' } : { scope: 'overall', period: scope };
        try {
            const r = await sig.request('board.get', req);
            if (scope === 'show') {
                this.board = r.entries || [];
            }
            if ($('board-scope').value === scope) {
                this.renderBoard(r.entries || []);
            }
            showError($('board-error'), null);
        } catch (e) {
            showError($('board-error'), e);
        }
    }
}
