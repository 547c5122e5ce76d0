/**
 * im2col / col2im for NHWC 2-D convolutions (dilation 1) on float32 data.
 *
 * Column layout: row r = (b * outH + oy) * outW + ox of the chunk, column
 * (ky * kW + kx) * inC + c, which matches a tfjs filter [kH, kW, inC, outC] read as a
 * [kH * kW * inC, outC] matrix.
 */

/** Geometry of one NHWC convolution; all sizes in elements, pads in pixels. */
export interface ConvGeometry {
  readonly batch: number;
  readonly inH: number;
  readonly inW: number;
  readonly inC: number;
  readonly outH: number;
  readonly outW: number;
  readonly outC: number;
  readonly kH: number;
  readonly kW: number;
  readonly strideH: number;
  readonly strideW: number;
  /** Zero rows added above the input (the ones below follow from the output size). */
  readonly padTop: number;
  /** Zero columns added left of the input. */
  readonly padLeft: number;
}

/** Inner dimension K = kH * kW * inC of the convolution as a matrix product. */
export function patchSize(g: ConvGeometry): number {
  return g.kH * g.kW * g.inC;
}

/** True when the column matrix equals the input itself (1x1 kernel, stride 1, no padding). */
export function isPointwise(g: ConvGeometry): boolean {
  return g.kH === 1 && g.kW === 1 && g.strideH === 1 && g.strideW === 1 && g.padTop === 0 &&
    g.padLeft === 0 && g.outH === g.inH && g.outW === g.inW;
}

/**
 * Writes the patches of images [b0, b0 + nb) of `x` [batch, inH, inW, inC] into
 * `cols` [nb * outH * outW, kH * kW * inC] (zeros where the window hangs over the padding).
 */
export function im2col(
  x: Float32Array,
  g: ConvGeometry,
  b0: number,
  nb: number,
  cols: Float32Array,
): void {
  const { inH, inW, inC, outH, outW, kH, kW, strideH, strideW, padTop, padLeft } = g;
  const rowLen = kW * inC;
  let o = 0;
  for (let b = b0; b < b0 + nb; b++) {
    const xImg = b * inH * inW * inC;
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * strideH - padTop;
      for (let ox = 0; ox < outW; ox++) {
        const ix0 = ox * strideW - padLeft;
        const kx0 = Math.max(0, -ix0);
        const kx1 = Math.min(kW, inW - ix0);
        for (let ky = 0; ky < kH; ky++) {
          const iy = iy0 + ky;
          if (iy < 0 || iy >= inH || kx1 <= kx0) {
            cols.fill(0, o, o + rowLen);
            o += rowLen;
            continue;
          }
          const lead = kx0 * inC;
          if (lead > 0) cols.fill(0, o, o + lead);
          let src = xImg + (iy * inW + ix0 + kx0) * inC;
          const n = (kx1 - kx0) * inC;
          for (let i = 0, d = o + lead; i < n; i++, d++, src++) cols[d] = x[src];
          const used = lead + n;
          if (used < rowLen) cols.fill(0, o + used, o + rowLen);
          o += rowLen;
        }
      }
    }
  }
}

/**
 * Adjoint of {@link im2col}: adds the patch gradients `cols` [nb * outH * outW, kH * kW * inC]
 * into images [b0, b0 + nb) of `dx` [batch, inH, inW, inC] (padding positions are dropped).
 */
export function col2imAdd(
  cols: Float32Array,
  g: ConvGeometry,
  b0: number,
  nb: number,
  dx: Float32Array,
): void {
  const { inH, inW, inC, outH, outW, kH, kW, strideH, strideW, padTop, padLeft } = g;
  const rowLen = kW * inC;
  let o = 0;
  for (let b = b0; b < b0 + nb; b++) {
    const xImg = b * inH * inW * inC;
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * strideH - padTop;
      for (let ox = 0; ox < outW; ox++) {
        const ix0 = ox * strideW - padLeft;
        const kx0 = Math.max(0, -ix0);
        const kx1 = Math.min(kW, inW - ix0);
        for (let ky = 0; ky < kH; ky++) {
          const iy = iy0 + ky;
          if (iy >= 0 && iy < inH && kx1 > kx0) {
            let dst = xImg + (iy * inW + ix0 + kx0) * inC;
            const n = (kx1 - kx0) * inC;
            for (let i = 0, s = o + kx0 * inC; i < n; i++, s++, dst++) dx[dst] += cols[s];
          }
          o += rowLen;
        }
      }
    }
  }
}
