import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  encodeNpy,
  encodeNpz,
  npyImageSet,
  parseNpy,
  parseNpz,
  readNpy,
  readNpz,
  writeNpy,
  writeNpz,
} from "../lib/data/npy.ts";

/** A .npy v1.0 file written by hand, as numpy lays it out. */
function handNpy(descr: string, shape: string, payload: Uint8Array, fortran = "False"): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  const header = dict.padEnd(128 - 10 - 1, " ") + "\n";
  const out = new Uint8Array(128 + payload.length);
  out.set([0x93, 78, 85, 77, 80, 89, 1, 0, header.length & 255, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(payload, 128);
  return out;
}

const le = (a: { buffer: ArrayBufferLike }) => new Uint8Array(a.buffer);

Deno.test("parseNpy reads hand-made f4, f8, i4, u1 and i8 files with exact values", () => {
  const f4 = parseNpy(
    handNpy("<f4", "(2, 2)", le(new Float32Array([1.5, -2, 0.25, 3e38]))),
    "a.npy",
  );
  assertEquals(f4.dtype, "<f4");
  assertEquals(f4.shape, [2, 2]);
  assertEquals(f4.data, new Float32Array([1.5, -2, 0.25, 3e38]));
  const f8 = parseNpy(handNpy("<f8", "(3,)", le(new Float64Array([Math.PI, -0.1, 1e-300]))), "b");
  assertEquals(f8.shape, [3]);
  assertEquals(f8.data, new Float64Array([Math.PI, -0.1, 1e-300]));
  const i4 = parseNpy(handNpy("<i4", "(1, 2, 1)", le(new Int32Array([-7, 2147483647]))), "c");
  assertEquals(i4.data, new Int32Array([-7, 2147483647]));
  const u1 = parseNpy(handNpy("|u1", "(4,)", new Uint8Array([0, 1, 128, 255])), "d");
  assertEquals(u1.data, new Uint8Array([0, 1, 128, 255]));
  assertEquals(
    parseNpy(handNpy("<u1", "(1,)", new Uint8Array([9])), "e").data,
    new Uint8Array([9]),
  );
  const i8 = parseNpy(handNpy("<i8", "(2,)", le(new BigInt64Array([-3n, 2n ** 62n]))), "f");
  assertEquals(i8.data, new BigInt64Array([-3n, 2n ** 62n]));
  const scalar = parseNpy(handNpy("<f8", "()", le(new Float64Array([2.5]))), "g");
  assertEquals(scalar.shape, []);
  assertEquals(scalar.data, new Float64Array([2.5]));
});

Deno.test("encodeNpy: 64-byte aligned v1.0 header, round-trips every dtype and files", async () => {
  const bytes = encodeNpy([2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
  assertEquals(bytes.length, 128 + 24); // as numpy: the header dict needs more than 64 bytes
  assertEquals(bytes[6], 1);
  assertEquals(bytes[127], 10); // header ends with "\n" right before the data
  const arrays = [
    new Float32Array([0.1, -1]),
    new Float64Array([0.1, -1]),
    new Int32Array([5, -5]),
    new Uint8Array([200, 3]),
    new BigInt64Array([-(2n ** 63n), 1n]),
  ];
  for (const data of arrays) {
    const back = parseNpy(encodeNpy([2], data), "rt");
    assertEquals(back.shape, [2]);
    assertEquals(back.data, data);
  }
  assertEquals(parseNpy(encodeNpy([], new Float64Array([7])), "s").shape, []);
  const dir = await Deno.makeTempDir();
  await writeNpy(`${dir}/x.npy`, [1, 2], new Int32Array([4, 2]));
  assertEquals((await readNpy(`${dir}/x.npy`)).data, new Int32Array([4, 2]));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("npz with 2 arrays round-trips, stored and compressed", async () => {
  const dir = await Deno.makeTempDir();
  for (const compress of [false, true]) {
    const path = `${dir}/pair${compress}.npz`;
    await writeNpz(path, {
      x: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      labels: { shape: [2], data: new Uint8Array([3, 1]) },
    }, compress);
    const back = await readNpz(path);
    assertEquals(Object.keys(back).sort(), ["labels", "x"]);
    assertEquals(back.x.shape, [2, 2]);
    assertEquals(back.x.data, new Float32Array([1, 2, 3, 4]));
    assertEquals(back.labels.data, new Uint8Array([3, 1]));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("parseNpy/parseNpz reject corrupt input, naming file and offset", async () => {
  const good = encodeNpy([4], new Float32Array(4));
  assertThrows(
    () => parseNpy(good.subarray(0, good.length - 3), "cut.npy"),
    RangeError,
    "cut.npy: .npy data truncated at offset 128: expected 16 bytes (shape [4] of <f4), found 13",
  );
  const bad = good.slice();
  bad[1] = 0;
  assertThrows(() => parseNpy(bad, "m.npy"), TypeError, "m.npy: bad .npy magic at offset 0");
  assertThrows(
    () => parseNpy(handNpy(">f4", "(1,)", new Uint8Array(4)), "be.npy"),
    TypeError,
    "be.npy: unsupported .npy dtype '>f4'",
  );
  assertThrows(
    () => parseNpy(handNpy("<f4", "(1,)", new Uint8Array(4), "True"), "f.npy"),
    TypeError,
    "f.npy: fortran_order True is not supported",
  );
  const npz = encodeNpz({ a: { shape: [4], data: new Float32Array(4) } });
  assertThrows(
    () => parseNpz(npz.subarray(0, 20), "z.npz"),
    TypeError,
    "z.npz: not a readable .npz",
  );
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/cut.npy`, good.subarray(0, 130));
  await assertRejects(
    () => readNpy(`${dir}/cut.npy`),
    RangeError,
    `${dir}/cut.npy: .npy data truncated at offset 128`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("npyImageSet scales uint8, keeps floats, rejects out-of-range floats", () => {
  const u8 = npyImageSet(
    { dtype: "|u1", shape: [2, 1, 2], data: new Uint8Array([0, 255, 51, 204]) },
    { dtype: "<i8", shape: [2], data: new BigInt64Array([4n, 0n]) },
  );
  assertEquals(u8.images.shape, [2, 1, 2, 1]);
  assertEquals(
    Array.from(u8.images.data),
    [-1, 1, 51 / 127.5 - 1, 204 / 127.5 - 1].map(Math.fround),
  );
  assertEquals(u8.labels, new Int32Array([4, 0]));
  assertThrows(
    () => npyImageSet({ dtype: "<f4", shape: [1, 1, 1, 1], data: new Float32Array([1.5]) }),
    RangeError,
    "images values must be in [-1, 1], got 1.5 at index 0",
  );
});

function numpyAvailable(): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", { args: ["-c", "import numpy"] }).outputSync()
      .success;
  } catch {
    return false;
  }
}

async function python(code: string): Promise<string> {
  const out = await new Deno.Command("/usr/bin/python3", { args: ["-c", code] }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name: "numpy interop: numpy reads our .npy/.npz and we read numpy's",
  ignore: !numpyAvailable(),
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await writeNpy(`${dir}/ours.npy`, [2, 3], new Float32Array([0.5, -1, 2, 3, 4, 1e-8]));
    await writeNpz(`${dir}/ours.npz`, {
      a: { shape: [2], data: new BigInt64Array([-9n, 10n]) },
      b: { shape: [2, 1], data: new Uint8Array([7, 255]) },
    }, true);
    const seen = await python(
      `import numpy as np, json
x = np.load("${dir}/ours.npy"); z = np.load("${dir}/ours.npz")
print(json.dumps([str(x.dtype), list(x.shape), x.ravel().tolist(), str(z["a"].dtype), z["a"].tolist(), str(z["b"].dtype), z["b"].tolist()]))`,
    );
    assertEquals(JSON.parse(seen), [
      "float32",
      [2, 3],
      Array.from(new Float32Array([0.5, -1, 2, 3, 4, 1e-8])),
      "int64",
      [-9, 10],
      "uint8",
      [[7], [255]],
    ]);
    await python(
      `import numpy as np
np.save("${dir}/np.npy", np.arange(6, dtype="<f8").reshape(3, 2) / 4)
np.savez("${dir}/np.npz", i=np.array([[1, -2]], dtype="<i4"), u=np.array([1, 2, 3], dtype=np.uint8))
np.savez_compressed("${dir}/npc.npz", f=np.array([0.1], dtype="<f4"))`,
    );
    const a = await readNpy(`${dir}/np.npy`);
    assertEquals(a.shape, [3, 2]);
    assertEquals(a.data, new Float64Array([0, 0.25, 0.5, 0.75, 1, 1.25]));
    const z = await readNpz(`${dir}/np.npz`);
    assertEquals(z.i.shape, [1, 2]);
    assertEquals(z.i.data, new Int32Array([1, -2]));
    assertEquals(z.u.data, new Uint8Array([1, 2, 3]));
    assertEquals((await readNpz(`${dir}/npc.npz`)).f.data, new Float32Array([0.1]));
    await Deno.remove(dir, { recursive: true });
  },
});
