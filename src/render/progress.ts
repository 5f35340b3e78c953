// A one-line spinner on stderr for slow steps, only on a terminal, and gone before the report is printed.
import type { Writable } from 'node:stream';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const LABELS: Record<string, string> = { discover: 'finding credentials', load: 'reading credentials', mint: 'minting an ID token', verify: 'checking the token', call: 'calling the target' };

export interface Progress {
  onStep: (step: string, phase: 'start' | 'end') => void;
  stop: () => void;
}

/** Steps that end within `delayMs` never show: a spinner that flashes for 5 ms is noise. */
export function terminalProgress(stream: Writable & { isTTY?: boolean }, delayMs = 150): Progress | undefined {
  if (!stream.isTTY) return undefined;
  let timer: NodeJS.Timeout | undefined;
  let shown = false;
  const clear = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (shown) stream.write('\r\u001b[2K');
    shown = false;
  };
  return {
    onStep(step, phase) {
      clear();
      if (phase === 'end') return;
      let frame = 0;
      const started = Date.now();
      timer = setInterval(() => {
        if (Date.now() - started < delayMs) return;
        shown = true;
        stream.write(`\r\u001b[2K${FRAMES[frame++ % FRAMES.length]} ${LABELS[step] ?? step}…`);
      }, 80);
      timer.unref();
    },
    stop: clear,
  };
}
