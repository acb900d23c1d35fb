// Singer contracts: the list (`contract.get`), a singer accepting an offer (`contract.accept`) and an
// agent offering one (`contract.offer`). Shared by singer.html and agent.html. Main thread; shares
// are shown as the server stores them (basis points), and the server checks every rule.

import { $, h, showError } from './ui.js';

/** 6000 basis points -> "60%". */
export function percent(bp) {
    return `${(bp / 100).toLocaleString('en-US', { maximumFractionDigits: 2 })}%`;
}

/** "60" or "60.5" (percent, as typed) -> 6000 or 6050 basis points; NaN when it is not a percentage. */
export function basisPoints(text) {
    const v = Number(String(text).trim());
    if (!Number.isFinite(v) || v < 0 || v > 100 || Math.round(v * 100) !== Number((v * 100).toFixed(6))) {
        return NaN;
    }
    return Math.round(v * 100);
}

function who(name, id) {
    return name || (id !== undefined && id !== null ? `#${id}` : '');
}

export class Contracts {
    /**
     * `conn` is an encore.js Connection; `role` 'singer' (may accept offers) or 'agent' (may offer).
     * Elements: #contracts (a <tbody>), #contracts-error, and for agents #offer-form with
     * #offer-singer, #offer-singer-share, #offer-agent-share, #offer-result, #offer-error.
     */
    constructor(conn, role) {
        this.conn = conn;
        this.role = role;
        this.contracts = [];
        if (role === 'agent') {
            $('offer-form').addEventListener('submit', (ev) => {
                ev.preventDefault();
                this.offer();
            });
        }
    }

    async refresh() {
        try {
            const sig = await this.conn.ready();
            const r = await sig.request('contract.get');
            this.contracts = Array.isArray(r.contracts) ? r.contracts : [];
            this.render();
            showError($('contracts-error'), null);
        } catch (e) {
            showError($('contracts-error'), e);
        }
    }

    render() {
        const rows = this.contracts.map((c) => {
            const action = h('td', {});
            if (this.role === 'singer' && c.status === 'offered') {
                // contract.accept names the agent; when the list gives only the agent's id, the
                // singer types the name the agent gave them.
                const name = c.agent_name ? null : h('input', { type: 'text', className: 'agent-name',
                    maxLength: 64, autocomplete: 'off', spellcheck: false,
                    'aria-label': `Account name of agent #${c.agent}`, placeholder: 'agent\'s name' });
                const b = h('button', { type: 'button', className: 'small',
                    'aria-label': `Accept the offer of ${who(c.agent_name, c.agent)}` }, 'Accept');
                b.addEventListener('click', () => this.accept(c.agent_name || name.value.trim(), b));
                action.append(...(name ? [name, b] : [b]));
            }
            return h('tr', { dataset: { singer: String(c.singer), agent: String(c.agent), status: c.status } },
                h('td', {}, who(c.singer_name, c.singer)), h('td', {}, who(c.agent_name, c.agent)),
                h('td', { className: 'num' }, percent(c.singer_bp)), h('td', { className: 'num' }, percent(c.agent_bp)),
                h('td', {}, h('span', { className: `state state-${c.status}` }, c.status)), action);
        });
        if (rows.length === 0) {
            rows.push(h('tr', {}, h('td', { colSpan: 6, className: 'empty' },
                this.role === 'singer' ? 'No contract: you earn the platform\'s default share.' : 'No contracts yet')));
        }
        $('contracts').replaceChildren(...rows);
    }

    async accept(agent, button) {
        showError($('contracts-error'), null);
        if (!agent) {
            showError($('contracts-error'), new Error('Enter the agent\'s account name.'));
            return;
        }
        button.disabled = true;
        try {
            const sig = await this.conn.ready();
            await sig.request('contract.accept', { agent });
            await this.refresh();
        } catch (e) {
            showError($('contracts-error'), e);
            button.disabled = false;
        }
    }

    async offer() {
        const singer = $('offer-singer').value.trim();
        const singerBp = basisPoints($('offer-singer-share').value);
        const agentBp = basisPoints($('offer-agent-share').value);
        showError($('offer-error'), null);
        $('offer-result').textContent = '';
        if (!singer || Number.isNaN(singerBp) || Number.isNaN(agentBp) || singerBp + agentBp > 10000) {
            showError($('offer-error'), new Error('Enter the singer\'s name and two shares that add up to at most 100%.'));
            return;
        }
        try {
            const sig = await this.conn.ready();
            const r = await sig.request('contract.offer', { singer, singer_bp: singerBp, agent_bp: agentBp });
            $('offer-result').textContent = `Offered to ${singer}: ${r.status}.`;
            await this.refresh();
        } catch (e) {
            showError($('offer-error'), e);
        }
    }
}
