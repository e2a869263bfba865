/**
 * `send --qr`: the share as a QR code a phone can scan and pass on. It encodes the whole
 * receive command line (`cipherpost receive <uri>`), so what the phone shows as text can be
 * pasted into a terminal as is. Drawn only on a terminal: with `NO_COLOR` set it uses no colour
 * escapes; without a terminal it is not drawn (a note says
 * why) since block characters in a log or a pipe are noise.
 *
 * @module
 */

/** What the QR code holds for a share URI. */
export function qrPayload(uri: string): string {
  return `cipherpost receive ${uri}`;
}

/** Draw options. */
export interface QrOptions {
  /** stderr is a terminal */
  tty: boolean;
  /** NO_COLOR is set (non-empty) */
  noColor: boolean;
}

/**
 * The text to print on stderr for `--qr`: the code (UTF-8 half blocks; with NO_COLOR without
 * colour escapes) followed by a line saying what it holds; on a non-terminal, one note line instead.
 */
export async function renderQr(uri: string, o: QrOptions): Promise<string> {
  const payload = qrPayload(uri);
  if (!o.tty) return "note: --qr draws only on a terminal (stderr is not one)\n";
  const dark = await qrModules(payload);
  const code = o.noColor ? halfBlocks(dark) : colourHalfBlocks(dark);
  return `${code}(QR: the command line "${payload}")\n`;
}

/**
 * The code's modules (true = dark), without a quiet zone; error correction level L. The encoder
 * is loaded on first use, not with the CLI: every command's memory would carry it (~1.4 MiB).
 */
export async function qrModules(payload: string): Promise<boolean[][]> {
  const { encodeQR } = await import("qr");
  // `raw` always has a quiet zone (at least one module): take the one-module ring off
  const raw = encodeQR(payload, "raw", { ecc: "low", border: 1 });
  return raw.slice(1, -1).map((row) => row.slice(1, -1));
}

/**
 * No escape codes: half blocks, two modules per character cell. As with qrencode's UTF8 output,
 * light modules (and a two-module quiet zone) are the drawn ones, which reads as dark-on-light on
 * the usual light-on-dark terminal.
 */
function halfBlocks(dark: boolean[][]): string {
  const size = dark.length;
  const light = (x: number, y: number) => !(x >= 0 && y >= 0 && x < size && y < size && dark[y][x]);
  const rows: string[] = [];
  for (let y = -2; y < size + 2; y += 2) {
    let line = "";
    for (let x = -2; x < size + 2; x++) {
      const top = light(x, y), bottom = y + 1 < size + 2 && light(x, y + 1);
      line += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
    }
    rows.push(line);
  }
  return rows.join("\n") + "\n";
}

/**
 * Colour half blocks with a one-module quiet zone, black on a white background (the drawing
 * `qrcode`'s small terminal renderer made, escape for escape).
 */
function colourHalfBlocks(dark: boolean[][]): string {
  const esc = "\x1b[", reset = `${esc}0m`;
  const setup = `${esc}47m${esc}30m`; // white background, black foreground
  const white = `${esc}37m`, black = `${esc}30m`;
  const size = dark.length;
  // 0 outside the quiet zone, 1 light, 2 dark
  const cell = (x: number, y: number) =>
    x > size || y > size || x < -1 || y < -1
      ? 0
      : x >= size || y >= size || x < 0 || y < 0
      ? 1
      : dark[y][x]
      ? 2
      : 1;
  const glyph = (top: number, bottom: number): string => {
    if (top === 0) {
      if (bottom === 0) return `${reset} ${setup}`;
      return `${reset}${bottom === 1 ? white : black}\u2584${setup}`;
    }
    if (bottom === 0) return `${reset}${top === 1 ? white : black}\u2580${setup}`;
    return top === 1 ? (bottom === 1 ? " " : "\u2584") : (bottom === 1 ? "\u2580" : "\u2588");
  };
  let out = setup;
  for (let y = -1; y < size + 1; y += 2) {
    for (let x = -1; x <= size; x++) out += glyph(cell(x, y), cell(x, y + 1));
    out += `${reset}\n${setup}`;
  }
  return out + reset;
}
