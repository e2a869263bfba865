/**
 * `send --qr`: the share as a QR code a phone can scan and pass on. It encodes the whole
 * receive command line (`cipherpost receive <uri>`), so what the phone shows as text can be
 * pasted into a terminal as is. Drawn only on a terminal: with `NO_COLOR` set it uses no colour
 * escapes; without a terminal it is not drawn (a note says
 * why) since block characters in a log or a pipe are noise.
 *
 * @module
 */

import QRCode from "qrcode";

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
  let code: string;
  if (o.noColor) {
    // No escape codes: half blocks, two modules per character cell. As with qrencode's UTF8
    // output, light modules (and the quiet zone) are the drawn ones, which reads as dark-on-light
    // on the usual light-on-dark terminal.
    const qr = QRCode.create(payload, { errorCorrectionLevel: "L" });
    const size: number = qr.modules.size;
    const light = (x: number, y: number) =>
      !(x >= 0 && y >= 0 && x < size && y < size && qr.modules.get(y, x) === 1);
    const rows: string[] = [];
    for (let y = -2; y < size + 2; y += 2) {
      let line = "";
      for (let x = -2; x < size + 2; x++) {
        const top = light(x, y), bottom = y + 1 < size + 2 && light(x, y + 1);
        line += top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ";
      }
      rows.push(line);
    }
    code = rows.join("\n") + "\n";
  } else {
    code = await QRCode.toString(payload, {
      type: "terminal",
      small: true,
      errorCorrectionLevel: "L",
    });
  }
  return `${code}(QR: the command line "${payload}")\n`;
}
