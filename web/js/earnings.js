// Earnings of singers and agents: balance, statement (`earnings.get`, paged), withdrawal requests and
// their states (`withdraw.request`, `withdraw.list`). Shared by singer.html and agent.html. Main
// thread; amounts are the server's, and the server decides who may see or withdraw what.

import { getCatalog } from './account.js';
import { moneyRequest } from './encore.js';
import { $, coins, dateTime, h, showError } from './ui.js';

const PAGE = 50;

/** What a statement line is about, in words; `giftNames` maps gift ids to catalog names. */
function describe(line, giftNames) {
    if (line.kind === 'gift') {
        const what = `${line.count ?? 1} × ${giftNames.get(line.gift) || line.gift || 'gift'}`;
        return line.from_name ? `${what} from ${line.from_name}` : line.from ? `${what} from #${line.from}` : what;
    }
    const names = {
        'withdrawal.hold': 'Withdrawal requested', 'withdrawal.pay': 'Withdrawal paid',
        'withdrawal.return': 'Withdrawal rejected, returned',
    };
    return names[line.kind] || line.kind;
}

export class Earnings {
    /**
     * `conn` is an encore.js Connection. The page's elements: #earnings-balance, #statement (a
     * <tbody>), #statement-more, #earnings-refresh, #earnings-error, #withdraw-form with
     * #withdraw-amount, #withdraw-result, #withdraw-error, #withdrawals.
     */
    constructor(conn) {
        this.conn = conn;
        this.balance = null;
        this.lines = [];
        this.withdrawals = [];
        this.refreshTimer = null;
        this.giftNames = new Map();
        getCatalog().then((c) => {
            for (const g of c.gifts || []) {
                this.giftNames.set(g.id, g.name);
            }
        }).catch(() => {}); // ids are shown instead
        $('earnings-refresh').addEventListener('click', () => this.refresh());
        $('statement-more').addEventListener('click', () => this.more());
        $('withdraw-form').addEventListener('submit', (ev) => {
            ev.preventDefault();
            this.withdraw();
        });
    }

    /** Reloads balance, the first statement page and the withdrawals. */
    async refresh() {
        try {
            const sig = await this.conn.ready();
            const r = await sig.request('earnings.get', { limit: PAGE });
            this.lines = [];
            this.render(r);
            showError($('earnings-error'), null);
        } catch (e) {
            showError($('earnings-error'), e);
        }
        await this.loadWithdrawals();
    }

    /** Refreshes a little later, once for a burst of calls (e.g. one per gift event). */
    refreshSoon(ms = 400) {
        clearTimeout(this.refreshTimer);
        this.refreshTimer = setTimeout(() => this.refresh(), ms);
    }

    async more() {
        const last = this.lines[this.lines.length - 1];
        if (!last) {
            return;
        }
        try {
            const sig = await this.conn.ready();
            this.render(await sig.request('earnings.get', { before: last.transfer, limit: PAGE }));
        } catch (e) {
            showError($('earnings-error'), e);
        }
    }

    render(r) {
        this.balance = r.balance;
        $('earnings-balance').textContent = coins(r.balance);
        $('earnings-balance').dataset.coins = String(r.balance);
        const lines = Array.isArray(r.lines) ? r.lines : [];
        this.lines.push(...lines);
        $('statement').replaceChildren(...this.lines.map((l) => h('tr', {
            dataset: { transfer: String(l.transfer), amount: String(l.amount), kind: l.kind } },
        h('td', {}, l.at ? dateTime(l.at) : ''), h('td', {}, describe(l, this.giftNames)),
        h('td', { className: l.amount < 0 ? 'num neg' : 'num' }, (l.amount > 0 ? '+' : '') + l.amount))));
        if (this.lines.length === 0) {
            $('statement').append(h('tr', {}, h('td', { colSpan: 3, className: 'empty' }, 'Nothing yet')));
        }
        $('statement-more').classList.toggle('hidden', lines.length < PAGE);
    }

    async loadWithdrawals() {
        try {
            const sig = await this.conn.ready();
            const r = await sig.request('withdraw.list');
            this.withdrawals = Array.isArray(r.withdrawals) ? r.withdrawals : [];
            $('withdrawals').replaceChildren(...this.withdrawals.map((w) => h('li', {
                dataset: { withdrawal: w.withdrawal, status: w.status, amount: String(w.amount) } },
            `${coins(w.amount)}: `, h('span', { className: `state state-${w.status}` }, w.status),
            w.at ? ` (${dateTime(w.at)})` : '')));
            if (this.withdrawals.length === 0) {
                $('withdrawals').append(h('li', { className: 'empty' }, 'No withdrawals'));
            }
        } catch (e) {
            showError($('withdraw-error'), e);
        }
    }

    /** One withdrawal request: one idempotency key, reused if the request has to be retried. */
    async withdraw() {
        const amount = Number($('withdraw-amount').value);
        showError($('withdraw-error'), null);
        $('withdraw-result').textContent = '';
        if (!Number.isInteger(amount) || amount < 1) {
            showError($('withdraw-error'), new Error('Enter a whole number of coins.'));
            return;
        }
        const button = $('withdraw-form').querySelector('button[type="submit"]');
        button.disabled = true;
        try {
            await this.conn.ready();
            const r = await moneyRequest(() => this.conn.currentOrReconnect(), 'withdraw.request', { amount });
            $('withdraw-result').textContent = `Withdrawal ${r.withdrawal}: ${r.status}.`;
            $('withdraw-result').dataset.withdrawal = r.withdrawal;
            await this.refresh();
        } catch (e) {
            showError($('withdraw-error'), e);
        } finally {
            button.disabled = false;
        }
    }
}
