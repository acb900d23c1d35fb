// The audience's wallet card (balance, today's spending, VIP status), sandbox top-up buttons and the
// VIP purchase form. Main thread; every number shown comes from the server (`wallet.get`, the
// answers of `vip.buy` and the checkout), never computed from what the page sent.

import { getCatalog, minorUnits, sandboxCheckout } from './account.js';
import { moneyRequest } from './encore.js';
import { $, coins, dateTime, h, showError } from './ui.js';

/** Sandbox packs in whole currency units (6.00, 30.00, 98.00 CNY with the default catalog). */
const TOPUP_UNITS = [6, 30, 98];

export class Wallet {
    /**
     * `session` gives the token for the checkout; `getSig()` the connection for `wallet.get` and
     * `vip.buy` (null while there is none); `onVip(userId, tier)` hears the reader's VIP tier.
     */
    constructor({ session, getSig, onVip = () => {} }) {
        this.session = session;
        this.getSig = getSig;
        this.onVip = onVip;
        this.state = null; // the last wallet.get answer, with balance updated by gift results
        this.catalog = null;
        $('vip-tier').addEventListener('change', () => this.showVipPrice());
        $('vip-months').addEventListener('change', () => this.showVipPrice());
        $('vip-buy').addEventListener('click', () => this.buyVip());
    }

    /** Builds the top-up buttons and the VIP tiers from the catalog. */
    async load() {
        try {
            this.catalog = await getCatalog();
        } catch (e) {
            showError($('wallet-error'), e);
            return;
        }
        const { currency, coins_per_unit: perUnit } = this.catalog;
        $('topups').replaceChildren(...TOPUP_UNITS.map((units) => {
            const amount = units * minorUnits(this.catalog);
            const b = h('button', { type: 'button', dataset: { amount: String(amount) },
                'aria-label': `Buy ${units * perUnit} coins for ${units} ${currency}` },
            `${coins(units * perUnit)} · ${units} ${currency}`);
            b.addEventListener('click', () => this.topUp(amount, b));
            return b;
        }));
        const tiers = Array.isArray(this.catalog.vip) ? this.catalog.vip : [];
        $('vip-tier').replaceChildren(...tiers.map((t) => h('option', { value: t.id }, t.name || t.id)));
        $('vip-buy').disabled = tiers.length === 0;
        this.showVipPrice();
    }

    showVipPrice() {
        const tiers = this.catalog && Array.isArray(this.catalog.vip) ? this.catalog.vip : [];
        const tier = tiers.find((t) => t.id === $('vip-tier').value);
        $('vip-price').textContent = tier ? coins(tier.price_per_month * Number($('vip-months').value)) : '-';
    }

    /** Asks the server for the wallet and shows it. */
    async refresh() {
        const sig = this.getSig();
        if (!sig) {
            return;
        }
        try {
            this.render(await sig.request('wallet.get'));
            showError($('wallet-error'), null);
        } catch (e) {
            showError($('wallet-error'), e);
        }
    }

    render(w) {
        this.state = w;
        $('balance').textContent = coins(w.balance);
        $('balance').dataset.coins = String(w.balance);
        $('spent-today').textContent = coins(w.spent_today ?? 0);
        $('daily-cap').textContent = w.daily_cap ? coins(w.daily_cap) : 'no limit';
        const vip = w.vip;
        $('vip-status').textContent = vip ? `${vip.tier} until ${dateTime(vip.expires)}` : 'none';
        $('vip-status').dataset.tier = vip ? vip.tier : '';
        if (this.session.user) {
            this.onVip(this.session.user.id, vip ? vip.tier : null);
        }
    }

    /** A gift answer carries the new balance: show it without another round trip. */
    setBalance(balance) {
        if (Number.isInteger(balance) && this.state) {
            this.render({ ...this.state, balance });
        }
    }

    async topUp(amount, button) {
        showError($('wallet-error'), null);
        $('topup-result').textContent = '';
        button.disabled = true;
        try {
            const r = await sandboxCheckout(this.session.token, amount, this.catalog.currency);
            $('topup-result').textContent = r.credited === false
                ? 'This payment was already credited.' : `Added ${coins(r.coins)}.`;
            await this.refresh();
        } catch (e) {
            showError($('wallet-error'), e);
        } finally {
            button.disabled = false;
        }
    }

    async buyVip() {
        const tier = $('vip-tier').value;
        const months = Number($('vip-months').value);
        showError($('vip-error'), null);
        $('vip-result').textContent = '';
        $('vip-buy').disabled = true;
        try {
            const r = await moneyRequest(this.getSig, 'vip.buy', { tier, months });
            $('vip-result').textContent = `You are VIP ${r.tier} until ${dateTime(r.expires)}.`;
            await this.refresh();
        } catch (e) {
            showError($('vip-error'), e);
        } finally {
            $('vip-buy').disabled = false;
        }
    }
}
