// The one tar codec (lib/material/tar.ts) and directory extraction (lib/flows/large/tar_fs.ts):
// the decisions of docs/PROTOCOL.md §5.4 on hostile archives, each with a case that fails when
// the decision is undone.
import assert from "node:assert/strict";
import {
  encodeTarHeader,
  MAX_PAX_HEADER,
  parsePax,
  readTar,
  TAR_END,
  type TarEntry,
  tarPadding,
} from "../lib/material/tar.ts";
import { extractTar } from "../lib/flows/large/tar_fs.ts";
import { concat, utf8 } from "../lib/util/encoding.ts";
import { fixChecksum, rawHeader, streamOf } from "./_tar.ts";
import { tmpDir } from "./_helpers.ts";

const file = (path: string, body = "x", mode = 0o644): Uint8Array[] => {
  const e: TarEntry = { path, type: "file", mode, size: utf8(body).length, mtime: 0 };
  return [encodeTarHeader(e), utf8(body), tarPadding(e.size)];
};
const dir = (path: string, mode = 0o755): Uint8Array[] => [
  encodeTarHeader({ path, type: "dir", mode, size: 0, mtime: 0 }),
];

async function entries(tar: Uint8Array): Promise<string[]> {
  const out: string[] = [];
  for await (const { entry, body } of readTar(streamOf(tar))) {
    let n = 0;
    for await (const c of body) n += c.length;
    out.push(`${entry.type} ${entry.path} ${n}`);
  }
  return out;
}

/** A pax `x` header block with `body` as its records. */
function paxHeader(body: Uint8Array): Uint8Array[] {
  const h = rawHeader("PaxHeader", body.length, "x");
  return [h, body, tarPadding(body.length)];
}

/** `count` pax records of `key=value`. */
function paxRecords(count: number, key = "comment", value = "v"): Uint8Array {
  const rec = (n: number) => `${n} ${key}=${value}\n`;
  let len = rec(0).length;
  while (rec(len).length !== len) len = rec(len).length;
  return utf8(rec(len).repeat(count));
}

Deno.test("tar: a pax header over the cap (64 KiB) is refused; one under it parses", async () => {
  // 1 MB of pax records (a quadratic parser took 20 s on it)
  const big = paxRecords(Math.ceil((1 << 20) / paxRecords(1).length));
  assert.ok(big.length >= 1 << 20);
  await assert.rejects(
    () => entries(concat(...[...paxHeader(big), ...file("a"), TAR_END])),
    /pax header too large/,
  );
  const over = utf8(`${MAX_PAX_HEADER + 1} comment=${"v".repeat(MAX_PAX_HEADER - 14)}\n`);
  assert.equal(over.length, MAX_PAX_HEADER + 1);
  await assert.rejects(
    () => entries(concat(...[...paxHeader(over), ...file("a"), TAR_END])),
    /pax header too large/,
  );
  // at the cap, many small records, the last one naming the entry
  const name = utf8("16 path=renamed\n");
  const one = paxRecords(1).length;
  const fill = paxRecords(Math.floor((MAX_PAX_HEADER - name.length) / one));
  const atCap = concat(...[fill, name]);
  assert.ok(atCap.length <= MAX_PAX_HEADER && atCap.length > MAX_PAX_HEADER - one);
  assert.deepEqual(await entries(concat(...[...paxHeader(atCap), ...file("a"), TAR_END])), [
    "file renamed 1",
  ]);
});

Deno.test("tar: pax records are parsed in one pass by their length prefixes", () => {
  // linear by construction: each record is located by its own length, never by a search
  // through the rest of the header; 1 MB of records (no cap at this level) gives every record
  const body = paxRecords(Math.ceil((1 << 20) / 6), "k", "v");
  assert.ok(body.length >= 1 << 20);
  assert.deepEqual(parsePax(body), { k: "v" });
  const mixed = concat(...[utf8("7 a=é\n"), utf8("12 path=x/y\n"), utf8("8 b=1=2\n")]);
  assert.deepEqual(parsePax(mixed), { a: "é", path: "x/y", b: "1=2" });
  for (
    const bad of ["5 a=b\n", "99 a=b\n", "x a=b\n", "6 ab\n\n", "7 a=bc", "7 =abc\n", "123456789 a"]
  ) {
    assert.throws(() => parsePax(utf8(bad)), /bad pax record/, bad);
  }
});

Deno.test("tar: pax headers must precede an entry, one at a time", async () => {
  const rec = utf8("12 path=x/y\n");
  await assert.rejects(
    () => entries(concat(...[...paxHeader(rec), TAR_END])),
    /pax header without/,
  );
  await assert.rejects(
    () => entries(concat(...[...paxHeader(rec), ...paxHeader(rec), ...file("a"), TAR_END])),
    /two pax headers/,
  );
});

Deno.test("tar: any byte after the end marker is refused (zeros too)", async () => {
  const ok = concat(...[...file("a"), TAR_END]);
  assert.deepEqual(await entries(ok), ["file a 1"]);
  for (const tail of [utf8("x"), new Uint8Array(512), new Uint8Array(10240 - ok.length)]) {
    await assert.rejects(() => entries(concat(...[ok, tail])), /bytes after the end marker/);
  }
  const dest = `${await tmpDir("cp-tar-")}/out`;
  try {
    await assert.rejects(
      () => extractTar(streamOf(concat(...[ok, utf8("x")])), dest),
      /after the end/,
    );
    await assert.rejects(() => Deno.lstat(dest), Deno.errors.NotFound, "nothing left behind");
  } finally {
    await Deno.remove(dest.slice(0, -4), { recursive: true });
  }
});

Deno.test("tar: names with control characters are refused (C0, DEL, C1), by reader and writer", async () => {
  for (const name of ["a\u001b[2Jb", "a\nb", "tab\there", "del\u007f", "c1\u0085x", "x/\u009b1m"]) {
    await assert.rejects(
      () => entries(concat(...[rawHeader(name, 0), TAR_END])),
      /control character/,
      JSON.stringify(name),
    );
    assert.throws(
      () => encodeTarHeader({ path: name, type: "file", mode: 0o644, size: 0, mtime: 0 }),
      /control character/,
    );
  }
  // bidi and other printable non-ASCII stay legal names (the screen escapes them)
  assert.deepEqual(await entries(concat(...[...file("in\u202evoice"), TAR_END])), [
    "file in\u202evoice 1",
  ]);
});

Deno.test("tar: GNU long names (types L and K) are refused with a message that says why", async () => {
  for (const flag of ["L", "K"]) {
    const longName = utf8("d/".repeat(60) + "f");
    await assert.rejects(
      () =>
        entries(concat(...[rawHeader("././@LongLink", longName.length, flag), longName, TAR_END])),
      /GNU long name; cipherpost archives carry long names in pax headers/,
    );
  }
});

Deno.test("extract: `a/b` then `a` is accepted (the late directory entry sets the mode); a late file `a` is refused", async () => {
  const base = await tmpDir("cp-tar-");
  try {
    await extractTar(
      streamOf(concat(...[...file("a/b", "bee"), ...dir("a", 0o750), TAR_END])),
      `${base}/ok`,
    );
    assert.equal(await Deno.readTextFile(`${base}/ok/a/b`), "bee");
    // the mode this process's umask leaves of 0o750 (a file created with it shows that)
    await Deno.writeFile(`${base}/probe`, new Uint8Array(), { mode: 0o750 });
    const expected = (await Deno.stat(`${base}/probe`)).mode! & 0o777;
    assert.equal((await Deno.stat(`${base}/ok/a`)).mode! & 0o777, expected);
    await assert.rejects(
      () => extractTar(streamOf(concat(...[...file("a/b"), ...file("a"), TAR_END])), `${base}/f`),
      /is a folder of earlier entries/,
    );
    await assert.rejects(() => Deno.lstat(`${base}/f`), Deno.errors.NotFound);
    // a directory named twice is still a duplicate
    await assert.rejects(
      () =>
        extractTar(
          streamOf(concat(...[...dir("a"), ...file("a/b"), ...dir("a"), TAR_END])),
          `${base}/d`,
        ),
      /duplicate entry/,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("extract: modes are the archive's permission bits masked by the receiver's umask", async () => {
  const base = await tmpDir("cp-tar-");
  try {
    const tar = concat(...[
      ...dir("d", 0o777),
      ...file("d/open", "x", 0o666),
      ...file("d/exec", "x", 0o777),
      ...file("d/own", "x", 0o600),
    ]);
    // the high bits never reach the writer's mode field: set them by hand (setuid, setgid, sticky)
    const suid = file("s", "x", 0o755);
    suid[0].set(utf8("0007755"), 100);
    fixChecksum(suid[0]);
    await Deno.writeFile(`${base}/t.tar`, concat(...[tar, ...suid, TAR_END]));
    // extract in a child whose umask is 027 (setting it here would need --allow-sys)
    const script = `${base}/x.ts`;
    await Deno.writeTextFile(
      script,
      `import { extractTar } from ${
        JSON.stringify(new URL("../lib/flows/large/tar_fs.ts", import.meta.url).href)
      };
await extractTar((await Deno.open(Deno.args[0])).readable, Deno.args[1]);`,
    );
    const r = await new Deno.Command("sh", {
      args: [
        "-c",
        'umask 027 && exec "$0" run --quiet --config "$1" --allow-read --allow-write "$2" "$3" "$4"',
        Deno.execPath(),
        new URL("../deno.json", import.meta.url).pathname,
        script,
        `${base}/t.tar`,
        `${base}/x`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const mode = async (p: string) => (await Deno.stat(`${base}/x/${p}`)).mode! & 0o7777;
    assert.equal(await mode("d"), 0o750);
    assert.equal(await mode("d/open"), 0o640);
    assert.equal(await mode("d/exec"), 0o750);
    assert.equal(await mode("d/own"), 0o600);
    assert.equal(await mode("s"), 0o750, "setuid, setgid and sticky never survive");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
