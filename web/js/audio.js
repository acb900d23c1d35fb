// WebAudio helpers shared by the pages: a probe (level, spectrum peak, per-channel level) on any
// audio node, and a level meter that draws it. Runs in the page's main thread; it only observes
// audio and never changes what is played or sent.

/** Creates the pages' AudioContext at 48 kHz (Opus's rate, so no resampling and known FFT bins). */
export function createAudioContext() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    try {
        return new Ctx({ latencyHint: 'interactive', sampleRate: 48000 });
    } catch (e) {
        return new Ctx({ latencyHint: 'interactive' });
    }
}

/**
 * Listens to `source` (an AudioNode) without producing sound: a smoothed analyser for the meter,
 * an 8192-point unsmoothed analyser for the dominant frequency, and one analyser per channel
 * (after a splitter) to tell a stereo signal from a mono one.
 */
export class AudioProbe {
    constructor(ctx, source) {
        this.ctx = ctx;
        this.source = source;
        this.meter = ctx.createAnalyser();
        this.meter.fftSize = 2048;
        this.spectrum = ctx.createAnalyser();
        this.spectrum.fftSize = 8192;
        this.spectrum.smoothingTimeConstant = 0;
        this.splitter = ctx.createChannelSplitter(2);
        this.channels = [ctx.createAnalyser(), ctx.createAnalyser()];
        source.connect(this.meter);
        source.connect(this.spectrum);
        source.connect(this.splitter);
        this.channels.forEach((a, i) => {
            a.fftSize = 2048;
            this.splitter.connect(a, i);
        });
        this.timeBuf = new Float32Array(2048);
        this.freqBuf = new Float32Array(this.spectrum.frequencyBinCount);
    }

    static rms(analyser, buf) {
        analyser.getFloatTimeDomainData(buf);
        let sum = 0;
        let peak = 0;
        for (let i = 0; i < buf.length; i++) {
            sum += buf[i] * buf[i];
            peak = Math.max(peak, Math.abs(buf[i]));
        }
        return { rms: Math.sqrt(sum / buf.length), peak };
    }

    /** The current level: RMS and peak in [0, 1], and RMS in dBFS. */
    level() {
        const { rms, peak } = AudioProbe.rms(this.meter, this.timeBuf);
        return { rms, peak, db: rms > 0 ? 20 * Math.log10(rms) : -Infinity };
    }

    /** RMS of each of the two channels (the second is 0 for a mono source). */
    channelRms() {
        return this.channels.map((a) => AudioProbe.rms(a, this.timeBuf).rms);
    }

    /** The loudest frequency bin above `minHz`: {hz, bin, binHz, db, sampleRate}. */
    peak(minHz = 50) {
        this.spectrum.getFloatFrequencyData(this.freqBuf);
        const binHz = this.ctx.sampleRate / this.spectrum.fftSize;
        let best = -1;
        let bestDb = -Infinity;
        for (let i = Math.max(1, Math.ceil(minHz / binHz)); i < this.freqBuf.length; i++) {
            if (this.freqBuf[i] > bestDb) {
                bestDb = this.freqBuf[i];
                best = i;
            }
        }
        return { hz: best * binHz, bin: best, binHz, db: bestDb, sampleRate: this.ctx.sampleRate };
    }

    disconnect() {
        try {
            this.source.disconnect(this.meter);
            this.source.disconnect(this.spectrum);
            this.source.disconnect(this.splitter);
        } catch (e) {
            // Already disconnected.
        }
    }
}

/**
 * Draws a probe's level into `fill` (an element whose width shows the level, on a dB scale from
 * -60 to 0 dBFS) and optionally a dB readout into `label`. `getProbe` may return null (silence).
 * Returns a function that stops the meter.
 */
export function runMeter(getProbe, fill, label = null) {
    let stopped = false;
    let shown = 0;
    const tick = () => {
        if (stopped) {
            return;
        }
        const probe = getProbe();
        const db = probe ? probe.level().db : -Infinity;
        const target = Number.isFinite(db) ? Math.min(1, Math.max(0, (db + 60) / 60)) : 0;
        // Fast attack, slow release, as level meters do.
        shown = target > shown ? target : shown * 0.9 + target * 0.1;
        fill.style.width = (shown * 100).toFixed(1) + '%';
        fill.classList.toggle('hot', db > -3);
        if (label) {
            label.textContent = Number.isFinite(db) && db > -90 ? `${db.toFixed(0)} dBFS` : 'silence';
        }
        window.requestAnimationFrame(tick);
    };
    window.requestAnimationFrame(tick);
    return () => {
        stopped = true;
    };
}
