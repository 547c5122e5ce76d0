/**
 * Stride-1 NHWC convolutions without im2col: the input is zero-padded once to
 * [nb, Hp, Wp, C] with Hp = outH + kH - 1, Wp = outW + kW - 1; in the flattened padded
 * coordinates every filter tap (ky, kx) is a constant row shift ky * Wp + kx, so each tap is
 * ONE sgemm over all rows (rows that wrap into the next line or image are computed and
 * dropped). Costs Hp * Wp / (outH * outW) of the ideal FLOPs, no 9x column buffer.
 */
import type { Blas } from "./blas.ts";
import type { ConvGeometry } from "./im2col.ts";
import type { Scratch } from "./cpu_access.ts";
import { type Alloc, freshArray } from "../output_pool.ts";

/** Default floats per padded chunk (64 MiB); a chunk always holds at least one image. */
export const PAD_CHUNK_FLOATS = 16 * 1024 * 1024;

/** True when {@link shiftedConv} applies: stride 1 and a kernel larger than 1x1. */
export function isShiftable(g: ConvGeometry): boolean {
  return g.strideH === 1 && g.strideW === 1 && g.kH * g.kW > 1;
}

interface Padded {
  hp: number;
  wp: number;
  /** GEMM rows per chunk of nb images. */
  rows(nb: number): number;
  /** Row shift of tap t = ky * kW + kx. */
  shift(t: number): number;
  /** Images per chunk. */
  step: number;
}

function padded(g: ConvGeometry, chunkFloats: number): Padded {
  const hp = g.outH + g.kH - 1, wp = g.outW + g.kW - 1;
  const perImage = hp * wp * Math.max(g.inC, g.outC);
  return {
    hp,
    wp,
    rows: (nb) => nb * hp * wp - (g.kH - 1) * wp - (g.kW - 1),
    shift: (t) => Math.floor(t / g.kW) * wp + (t % g.kW),
    step: Math.max(1, Math.min(g.batch, Math.floor(chunkFloats / perImage))),
  };
}

/**
 * Copies between unpadded images [b0, b0 + nb) of `x` [batch, inH, inW, inC] and the padded
 * chunk `xp` [nb, Hp, Wp, inC]: `toPadded` zero-fills `xp` and writes x into it; otherwise
 * the overlapping region of `xp` is copied back into `x` (the rest of x is left untouched).
 */
function transferPadded(
  x: Float32Array,
  xp: Float32Array,
  g: ConvGeometry,
  p: Padded,
  b0: number,
  nb: number,
  toPadded: boolean,
): void {
  const c = g.inC;
  if (toPadded) xp.fill(0);
  const rowsY = Math.min(g.inH, p.hp - g.padTop);
  const cols = Math.min(g.inW, p.wp - g.padLeft);
  if (cols <= 0) return;
  for (let b = 0; b < nb; b++) {
    for (let iy = 0; iy < rowsY; iy++) {
      const src = (((b0 + b) * g.inH + iy) * g.inW) * c;
      const dst = ((b * p.hp + iy + g.padTop) * p.wp + g.padLeft) * c;
      if (toPadded) xp.set(x.subarray(src, src + cols * c), dst);
      else x.set(xp.subarray(dst, dst + cols * c), src);
    }
  }
}

/**
 * Copies between images [b0, b0 + nb) of `y` [batch, outH, outW, outC] and the padded-row
 * matrix `yp` [rows, outC] (row (b * Hp + oy) * Wp + ox). `toPadded` zero-fills `yp` first.
 */
function transferRows(
  y: Float32Array,
  yp: Float32Array,
  g: ConvGeometry,
  p: Padded,
  b0: number,
  nb: number,
  toPadded: boolean,
): void {
  const o = g.outC, run = g.outW * o;
  if (toPadded) yp.fill(0);
  for (let b = 0; b < nb; b++) {
    for (let oy = 0; oy < g.outH; oy++) {
      const dense = (((b0 + b) * g.outH + oy) * g.outW) * o;
      const pad = ((b * p.hp + oy) * p.wp) * o;
      if (toPadded) yp.set(y.subarray(dense, dense + run), pad);
      else y.set(yp.subarray(pad, pad + run), dense);
    }
  }
}

/** y [batch, outH, outW, outC] = conv(x, w [kH, kW, inC, outC]) for a stride-1 geometry. */
export function shiftedForward(
  blas: Blas,
  scratch: [Scratch, Scratch],
  x: Float32Array,
  w: Float32Array,
  g: ConvGeometry,
  chunkFloats = PAD_CHUNK_FLOATS,
  alloc: Alloc = freshArray,
): Float32Array {
  const p = padded(g, chunkFloats), c = g.inC, o = g.outC, taps = g.kH * g.kW;
  const y = alloc(g.batch * g.outH * g.outW * o);
  for (let b0 = 0; b0 < g.batch; b0 += p.step) {
    const nb = Math.min(p.step, g.batch - b0), rows = p.rows(nb);
    const xp = scratch[0].get(nb * p.hp * p.wp * c);
    const yp = scratch[1].get(nb * p.hp * p.wp * o);
    transferPadded(x, xp, g, p, b0, nb, true);
    for (let t = 0; t < taps; t++) {
      const xs = xp.subarray(p.shift(t) * c);
      blas.sgemm(false, false, rows, o, c, 1, xs, c, w.subarray(t * c * o), o, t ? 1 : 0, yp, o);
    }
    transferRows(y, yp, g, p, b0, nb, false);
  }
  return y;
}

/** dx [batch, inH, inW, inC] from dy [batch, outH, outW, outC] for a stride-1 geometry. */
export function shiftedBackpropInput(
  blas: Blas,
  scratch: [Scratch, Scratch],
  dy: Float32Array,
  w: Float32Array,
  g: ConvGeometry,
  chunkFloats = PAD_CHUNK_FLOATS,
  alloc: Alloc = freshArray,
): Float32Array {
  const p = padded(g, chunkFloats), c = g.inC, o = g.outC, taps = g.kH * g.kW;
  // zeroed: the copy back from the padded chunks may leave border pixels untouched
  const dx = alloc(g.batch * g.inH * g.inW * c).fill(0);
  for (let b0 = 0; b0 < g.batch; b0 += p.step) {
    const nb = Math.min(p.step, g.batch - b0), rows = p.rows(nb);
    const dxp = scratch[0].get(nb * p.hp * p.wp * c).fill(0);
    const dyp = scratch[1].get(nb * p.hp * p.wp * o);
    transferRows(dy, dyp, g, p, b0, nb, true);
    for (let t = 0; t < taps; t++) {
      const dxs = dxp.subarray(p.shift(t) * c);
      blas.sgemm(false, true, rows, c, o, 1, dyp, o, w.subarray(t * c * o), o, 1, dxs, c);
    }
    transferPadded(dx, dxp, g, p, b0, nb, false);
  }
  return dx;
}

/** dw [kH, kW, inC, outC] from x and dy for a stride-1 geometry. */
export function shiftedBackpropFilter(
  blas: Blas,
  scratch: [Scratch, Scratch],
  x: Float32Array,
  dy: Float32Array,
  g: ConvGeometry,
  chunkFloats = PAD_CHUNK_FLOATS,
  alloc: Alloc = freshArray,
): Float32Array {
  const p = padded(g, chunkFloats), c = g.inC, o = g.outC, taps = g.kH * g.kW;
  const dw = alloc(taps * c * o);
  for (let b0 = 0; b0 < g.batch; b0 += p.step) {
    const nb = Math.min(p.step, g.batch - b0), rows = p.rows(nb);
    const xp = scratch[0].get(nb * p.hp * p.wp * c);
    const dyp = scratch[1].get(nb * p.hp * p.wp * o);
    transferPadded(x, xp, g, p, b0, nb, true);
    transferRows(dy, dyp, g, p, b0, nb, true);
    for (let t = 0; t < taps; t++) {
      const xs = xp.subarray(p.shift(t) * c);
      const beta = b0 === 0 ? 0 : 1;
      blas.sgemm(true, false, c, o, rows, 1, xs, c, dyp, o, beta, dw.subarray(t * c * o), o);
    }
  }
  return dw;
}
