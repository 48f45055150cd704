// Matmuls for packed 2-8-bit weights held in PyTorch's CPU int4 layout: y = x @ W.T in fp32.
// Built by compress/formats/native_kernels.py with the system C++ compiler and called via ctypes.
//
// scalecompress_packed_prefill (many rows): the weight is never dequantized whole. Each thread
// takes a tile of output rows (whole blocks of the layout), dequantizes it into a buffer that
// stays in cache (K x tile floats, transposed so that writes are contiguous), and multiplies it
// with the BLAS sgemm that PyTorch itself uses (MKL; its address is passed in) straight into its
// columns of y. The values are exact: (code - zero) * scale with the fp16 scales and zeros as
// stored, as QuantizedLinear.dequantize() computes them.
//
// scalecompress_packed_gemv (a few rows, decoding): the activations quantized to int8 per 32
// inputs (llama.cpp's Q8_0), codes times them summed in integers (vpmaddubsw), then
// scale * (sum - zero * sum of x over the group) once per group.
//
// Layout (compress.formats.cpu_int4): full blocks of `block` rows, then a tail of rows % block
// rows packed in pairs. Inside a block of B rows the bytes are column-major, B/2 per column;
// byte j holds rows (j, j + B/2) ("half": the AVX2/AVX512 lanes) or (2j, 2j + 1) ("pairs"), low
// nibble first. 5-8-bit codes ("split") come as 2K columns: high nibbles, then low nibbles.
#include <cstdint>
#include <cstring>
#include <vector>
#include <algorithm>
#include <cmath>
#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

typedef void (*sgemm_fn)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);

// A weight in the layout above with its fp16 scales and zeros (zeros null: every zero is
// default_zero), bound once per layer by native_kernels.bind; every field 8 bytes wide.
struct PackedWeight {
  const uint8_t* packed;
  int64_t rows, columns, block, half;  // half: the "half" byte order, else "pairs"
  const uint16_t* scales;              // (N, groups) fp16
  const uint16_t* zeros;               // (N, groups) fp16, or null
  int64_t groups;
  double default_zero;
  int64_t group;                       // inputs per quantization group (the last may be ragged)
  int64_t in_features, out_features;   // K, N
};

static inline float half_to_float(uint16_t h) {
#ifdef __F16C__
  return _cvtsh_ss(h);
#endif
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while (!(mantissa & 0x400)) { mantissa <<= 1; --exponent; }
      bits = sign | (exponent << 23) | ((mantissa & 0x3FF) << 13);
    }
  } else if (exponent == 31) {
    bits = sign | 0x7F800000 | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Codes of the B rows of one block into buf[k * ld + r] (floats; split codes as 16 * high + low).
static void unpack_block(const uint8_t* src, int64_t B, bool half, int64_t columns, int64_t K, float* buf, int64_t ld) {
  const int64_t H = B / 2;
  const bool split = columns != K;
  for (int64_t c = 0; c < columns; ++c, src += H) {
    const bool low_of_split = split && c >= K;
    float* dst = buf + (low_of_split ? c - K : c) * ld;
    const float weight = split && !low_of_split ? 16.0f : 1.0f;
    if (half) {
      if (low_of_split) {
        for (int64_t j = 0; j < H; ++j) { dst[j] += (float)(src[j] & 0xF); dst[j + H] += (float)(src[j] >> 4); }
      } else {
        for (int64_t j = 0; j < H; ++j) { dst[j] = weight * (float)(src[j] & 0xF); dst[j + H] = weight * (float)(src[j] >> 4); }
      }
    } else {
      if (low_of_split) {
        for (int64_t j = 0; j < H; ++j) { dst[2 * j] += (float)(src[j] & 0xF); dst[2 * j + 1] += (float)(src[j] >> 4); }
      } else {
        for (int64_t j = 0; j < H; ++j) { dst[2 * j] = weight * (float)(src[j] & 0xF); dst[2 * j + 1] = weight * (float)(src[j] >> 4); }
      }
    }
  }
}

#ifdef __AVX2__
// 16 codes (uint8 lanes of `codes`) at rows r..r+15: out = (code - zero) * scale, as floats.
static inline void affine16(__m128i codes, const float* zero, const float* scale, float* out) {
  const __m256 a = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(codes));
  const __m256 b = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(codes, 8)));
  _mm256_storeu_ps(out, _mm256_mul_ps(_mm256_sub_ps(a, _mm256_loadu_ps(zero)), _mm256_loadu_ps(scale)));
  _mm256_storeu_ps(out + 8, _mm256_mul_ps(_mm256_sub_ps(b, _mm256_loadu_ps(zero + 8)), _mm256_loadu_ps(scale + 8)));
}

// The common cases in one pass: a "half" block (B a multiple of 32) unpacked and dequantized
// straight into buf[k * ld + r]; zero and scale are the tile's (G, ld) tables already offset to
// this block's rows. 2-4-bit codes are one nibble; split 5-8-bit codes (K high-nibble columns,
// then K low-nibble columns) are put together as (high << 4) | low, still one byte.
static void dequantize_half_block(const uint8_t* src, int64_t B, int64_t K, bool split, int64_t group, const float* zero,
                                  const float* scale, int64_t ld, float* buf) {
  const int64_t H = B / 2;
  const __m128i low = _mm_set1_epi8(0x0F), high = _mm_set1_epi8(static_cast<char>(0xF0));
  const uint8_t* second = src + K * H;  // split: the low nibbles' columns
  for (int64_t c = 0; c < K; ++c, src += H, second += H) {
    const int64_t g = (c / group) * ld;
    float* dst = buf + c * ld;
    for (int64_t j = 0; j < H; j += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + j));
      __m128i first_rows = _mm_and_si128(bytes, low), last_rows = _mm_and_si128(_mm_srli_epi16(bytes, 4), low);
      if (split) {
        const __m128i lows = _mm_loadu_si128(reinterpret_cast<const __m128i*>(second + j));
        first_rows = _mm_or_si128(_mm_and_si128(_mm_slli_epi16(bytes, 4), high), _mm_and_si128(lows, low));
        last_rows = _mm_or_si128(_mm_and_si128(bytes, high), _mm_and_si128(_mm_srli_epi16(lows, 4), low));
      }
      affine16(first_rows, zero + g + j, scale + g + j, dst + j);
      affine16(last_rows, zero + g + H + j, scale + g + H + j, dst + H + j);
    }
  }
}
#endif

extern "C" int scalecompress_packed_prefill(
    const float* x, int64_t M,                     // activations (M, K), row-major
    const PackedWeight* w,
    float* y,                                      // output (M, N), row-major; N <= rows
    int64_t tile_floats, int threads, sgemm_fn sgemm) {
  const int64_t K = w->in_features, N = w->out_features, rows = w->rows, columns = w->columns, block = w->block, G = w->groups;
  const int64_t group = w->group, half = w->half;
  const uint8_t* packed = w->packed;
  const uint16_t *scales = w->scales, *zeros = w->zeros;
  const float default_zero = (float)w->default_zero;
  if (columns != K && columns != 2 * K) return 1;
  // Tiles: runs of whole blocks of about `tile_floats` dequantized floats; the tail block alone.
  struct Tile { int64_t row, size, blocks, offset; bool half; };
  std::vector<Tile> tiles;
  const int64_t full = rows / block;
  const int64_t per_tile = std::max<int64_t>(1, tile_floats / (K * block));
  for (int64_t b = 0; b < full; b += per_tile) {
    const int64_t count = std::min(per_tile, full - b);
    tiles.push_back({b * block, count * block, count, b * block * columns / 2, half != 0});
  }
  if (rows > full * block) tiles.push_back({full * block, rows - full * block, 1, full * block * columns / 2, false});
  const int64_t count = (int64_t)tiles.size();

#pragma omp parallel num_threads(threads)
  {
    int64_t widest = block;
    for (const Tile& t : tiles) widest = std::max(widest, t.size);
    std::vector<float> buf(K * widest), scale(G * widest), zero(G * widest);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) {
      const Tile& t = tiles[i];
      const int64_t T = t.size, valid = std::min(T, N - t.row);
      if (valid <= 0) continue;  // padding rows only
      for (int64_t r = 0; r < T; ++r) {  // this tile's scales and zeros, transposed to (G, T)
        const int64_t n = t.row + r;
        for (int64_t g = 0; g < G; ++g) {
          scale[g * T + r] = r < valid ? half_to_float(scales[n * G + g]) : 0.0f;
          zero[g * T + r] = r < valid ? (zeros ? half_to_float(zeros[n * G + g]) : default_zero) : 0.0f;
        }
      }
      const int64_t B = t.blocks > 1 ? block : T;
#ifdef __AVX2__
      if (t.half && B % 32 == 0) {
        for (int64_t b = 0; b < t.blocks; ++b)
          dequantize_half_block(packed + t.offset + b * B * columns / 2, B, K, columns != K, group, zero.data() + b * B,
                                scale.data() + b * B, T, buf.data() + b * B);
      } else
#endif
      {
        for (int64_t b = 0; b < t.blocks; ++b)
          unpack_block(packed + t.offset + b * B * columns / 2, B, t.half, columns, K, buf.data() + b * B, T);
        for (int64_t k = 0; k < K; ++k) {
          float* row = buf.data() + k * T;
          const float* s = scale.data() + (k / group) * T;
          const float* z = zero.data() + (k / group) * T;
          for (int64_t r = 0; r < T; ++r) row[r] = (row[r] - z[r]) * s[r];
        }
      }
      // y[:, row:row+valid] = x @ W_tile.T; column-major: C (valid x M) = A (valid x K) * X (K x M)
      const int m = (int)valid, n = (int)M, k = (int)K, lda = (int)T, ldb = (int)K, ldc = (int)N;
      const float alpha = 1.0f, beta = 0.0f;
      sgemm("N", "N", &m, &n, &k, &alpha, buf.data(), &lda, x, &ldb, &beta, y + t.row, &ldc);
    }
  }
  return 0;
}

// Decoding: y = x @ W.T for a few token rows, straight from the packed codes (no tile buffer),
// with the activations quantized to int8 as llama.cpp does for its Q4_0/Q8_0 dot products: per
// row and per block of 32 inputs, d = max|x| / 127 and q = round(x / d). The result is the
// product with those dequantized activations x^ = d * q (as exact as the int4 op's bf16
// activations: 2^-8 of the block's largest input). Per block of B output rows and per
// quantization group: the codes times q are summed in integers (AVX2 vpmaddubsw, four columns
// per step; 16-bit sums widened every 32 inputs, when the block's d applies), then
// y += scale * (sum - zero * sum of x^ over the group). Full "half" blocks of 32 or 64 rows run
// the AVX2 loop; tail blocks (pairs) are dequantized like the prefill tiles and multiplied scalar.
static const int64_t XBLOCK = 32;  // inputs per activation scale (K and every group are multiples)

// 32 activations as int8: *d = max|x| / 127, q = round(x / d) (half to even, as torch.round;
// all zero when x is). Returns the sum of q.
static inline float quantize32(const float* x, int8_t* q, float* d) {
#ifdef __AVX2__
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4], largest = _mm256_setzero_ps();
  for (int i = 0; i < 4; ++i) largest = _mm256_max_ps(largest, _mm256_andnot_ps(sign, v[i] = _mm256_loadu_ps(x + 8 * i)));
  __m128 half = _mm_max_ps(_mm256_castps256_ps128(largest), _mm256_extractf128_ps(largest, 1));
  half = _mm_max_ps(half, _mm_movehl_ps(half, half));
  const float top = _mm_cvtss_f32(_mm_max_ss(half, _mm_movehdup_ps(half)));
  *d = top / 127.0f;
  const __m256 inverse = _mm256_set1_ps(top > 0.0f ? 127.0f / top : 0.0f);
  __m256i n[4];
  for (int i = 0; i < 4; ++i) n[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], inverse));  // MXCSR: nearest, ties to even
  const __m256i total = _mm256_add_epi32(_mm256_add_epi32(n[0], n[1]), _mm256_add_epi32(n[2], n[3]));
  // pack 32 x int32 -> int8 (packs work per 128-bit lane: put the 32-bit groups back in order)
  const __m256i words = _mm256_packs_epi32(n[0], n[1]), more = _mm256_packs_epi32(n[2], n[3]);
  const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(words, more), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), bytes);
  __m128i sum = _mm_add_epi32(_mm256_castsi256_si128(total), _mm256_extracti128_si256(total, 1));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4E));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xB1));
  return (float)_mm_cvtsi128_si32(sum);
#else
  float top = 0.0f;
  for (int k = 0; k < XBLOCK; ++k) top = std::max(top, std::fabs(x[k]));
  *d = top / 127.0f;
  const float inverse = top > 0.0f ? 127.0f / top : 0.0f;
  int sum = 0;
  for (int k = 0; k < XBLOCK; ++k) sum += q[k] = (int8_t)std::nearbyint(x[k] * inverse);
  return (float)sum;
#endif
}

#ifdef __AVX2__
// 16 bytes at `low` and 16 at `high` as one register (what _mm256_loadu2_m128i does; older GCCs lack it).
static inline __m256i load_pair(const uint8_t* low, const uint8_t* high) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(low))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(high)), 1);
}

// 32 columns of a "half" block of 2H rows times one token row's int8 activations, for the 32 rows
// whose codes sit in bytes [0, 16) of each column (`columns` points at them; a column is H bytes):
// rows 0-15 (low nibbles) and H..H+15 (high). In 16-bit lanes, sums[0] gets rows 0-7, [1] 8-15,
// [2] H..H+7, [3] H+8..H+15; the low lane sums columns (c, c+1), the high lane (c+2, c+3).
// `pairs` holds q as each step's 32 bytes: (q_c, q_c+1) x 8 in the low lane, (q_c+2, q_c+3) x 8
// in the high. Codes <= 15 and |q| <= 127: a step adds <= 3810 per lane, eight stay below 2^15.
template <int H>
static inline void dot32(const uint8_t* columns, const int8_t* pairs, __m256i sums[4]) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256();
  for (int step = 0; step < 8; ++step, columns += 4 * H) {
    const __m256i a = load_pair(columns, columns + 2 * H), b = load_pair(columns + H, columns + 3 * H);
    const __m256i a_low = _mm256_and_si256(a, low), a_high = _mm256_and_si256(_mm256_srli_epi16(a, 4), low);
    const __m256i b_low = _mm256_and_si256(b, low), b_high = _mm256_and_si256(_mm256_srli_epi16(b, 4), low);
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pairs + 32 * step));
    s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a_low, b_low), x));    // rows 0-7
    s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a_low, b_low), x));    // rows 8-15
    s2 = _mm256_add_epi16(s2, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a_high, b_high), x));  // rows H..H+7
    s3 = _mm256_add_epi16(s3, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a_high, b_high), x));  // rows H+8..H+15
  }
  sums[0] = s0, sums[1] = s1, sums[2] = s2, sums[3] = s3;
}

// 16-bit sums of dot32 (both lanes: the same rows) as eight 32-bit sums.
static inline __m256i widen(__m256i sums) {
  return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(sums)), _mm256_cvtepi16_epi32(_mm256_extracti128_si256(sums, 1)));
}

// dot32's 32 rows times one token row over one quantization group [begin, end): out[q] += d_b *
// the integer sum of each 32-input block b. Split 5-8-bit codes add 16 x their high-nibble
// columns (src) to their low-nibble columns (src + K * H).
template <int H>
static inline void group32(const uint8_t* src, int64_t K, bool split, const int8_t* pairs, const float* scale, int64_t begin,
                           int64_t end, __m256* out) {
  for (int64_t block = begin; block < end; block += XBLOCK) {
    __m256i high[4], lows[4];
    dot32<H>(src + block * H, pairs + 8 * block, high);
    if (split) dot32<H>(src + (K + block) * H, pairs + 8 * block, lows);
    const __m256 d = _mm256_set1_ps(scale[block / XBLOCK]);
    for (int q = 0; q < 4; ++q) {
      const __m256i total = split ? _mm256_add_epi32(_mm256_slli_epi32(widen(high[q]), 4), widen(lows[q])) : widen(high[q]);
      out[q] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), d, out[q]);
    }
  }
}

// A full "half" block of B = 2H rows (32: AVX2's layout, 64: AVX-512's) times the token rows, in
// B / 32 passes of dot32's 32 rows (bytes [16 p, 16 p + 16) of each column), into y.
template <int H>
static void gemv_block(const uint8_t* src, int64_t K, bool split, int64_t M, const int8_t* pairs, const float* d, const float* group_sums,
                       int64_t G, int64_t group, const float* scale, const float* zero, int64_t valid, float* y, int64_t N) {
  const int64_t B = 2 * H, blocks = K / XBLOCK;
  for (int64_t m = 0; m < M; ++m) {
    float result[2 * H];
    for (int64_t pass = 0; pass < B / 32; ++pass) {
      const int64_t first[4] = {16 * pass, 16 * pass + 8, H + 16 * pass, H + 16 * pass + 8};  // each sum's first row
      __m256 out[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t g = 0; g < G; ++g) {
        __m256 sums[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        group32<H>(src + 16 * pass, K, split, pairs + 8 * m * K, d + m * blocks, g * group, std::min(K, (g + 1) * group), sums);
        const __m256 xs = _mm256_set1_ps(group_sums[m * G + g]);
        for (int r = 0; r < 4; ++r) {
          const __m256 z = _mm256_loadu_ps(zero + g * B + first[r]), sc = _mm256_loadu_ps(scale + g * B + first[r]);
          out[r] = _mm256_fmadd_ps(sc, _mm256_fnmadd_ps(z, xs, sums[r]), out[r]);
        }
      }
      for (int r = 0; r < 4; ++r) _mm256_storeu_ps(result + first[r], out[r]);
    }
    for (int64_t r = 0; r < valid; ++r) y[m * N + r] = result[r];
  }
}
#endif

extern "C" int scalecompress_packed_gemv(const float* x, int64_t M, const PackedWeight* w, float* y, int threads) {
  const int64_t K = w->in_features, N = w->out_features, rows = w->rows, columns = w->columns, block = w->block, G = w->groups;
  const int64_t group = w->group, half = w->half;
  const uint8_t* packed = w->packed;
  const uint16_t *scales = w->scales, *zeros = w->zeros;
  const float default_zero = (float)w->default_zero;
  if ((columns != K && columns != 2 * K) || K % XBLOCK || group % XBLOCK) return 1;
  const bool split = columns != K;
  const int64_t full = rows / block;
  const int64_t count = full + (rows > full * block ? 1 : 0);
  const int64_t blocks = K / XBLOCK;
  // The activations: q (int8), their scales d per 32 inputs, and x^ = d * q summed per group.
  std::vector<int8_t> q(M * K);
  std::vector<float> d(M * blocks), group_sums(M * G, 0.0f);
  for (int64_t b = 0; b < M * blocks; ++b) {
    const int64_t m = b / blocks, k0 = (b % blocks) * XBLOCK;
    const float sum = quantize32(x + m * K + k0, q.data() + m * K + k0, &d[b]);
    group_sums[m * G + k0 / group] += d[b] * sum;
  }
#ifdef __AVX2__
  // Each step's 32 bytes for vpmaddubsw: (q_c, q_c+1) x 8 in the low lane, (q_c+2, q_c+3) x 8 in the high.
  std::vector<int8_t> pairs(8 * M * K);  // 32 bytes per step of 4 inputs
  const __m256i spread = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  for (int64_t step = 0; step < M * K / 4; ++step) {
    int32_t four;
    std::memcpy(&four, q.data() + 4 * step, 4);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(pairs.data() + 32 * step), _mm256_shuffle_epi8(_mm256_set1_epi32(four), spread));
  }
#endif
#pragma omp parallel num_threads(threads)
  {
  std::vector<float> scale(G * block), zero(G * block);
#pragma omp for schedule(static)
  for (int64_t i = 0; i < count; ++i) {
    const bool tail = i == full;
    const int64_t row0 = i * block, B = tail ? rows - full * block : block;
    const int64_t valid = std::min(B, N - row0);
    if (valid <= 0) continue;
    const uint8_t* src = packed + row0 * columns / 2;
    for (int64_t r = 0; r < B; ++r) {
      const int64_t n = row0 + r;
      for (int64_t g = 0; g < G; ++g) {
        scale[g * B + r] = r < valid ? half_to_float(scales[n * G + g]) : 0.0f;
        zero[g * B + r] = r < valid ? (zeros ? half_to_float(zeros[n * G + g]) : default_zero) : 0.0f;
      }
    }
#ifdef __AVX2__
    if (!tail && half && (B == 32 || B == 64)) {
      const float* ds = d.data();
      if (B == 32)
        gemv_block<16>(src, K, split, M, pairs.data(), ds, group_sums.data(), G, group, scale.data(), zero.data(), valid, y + row0, N);
      else
        gemv_block<32>(src, K, split, M, pairs.data(), ds, group_sums.data(), G, group, scale.data(), zero.data(), valid, y + row0, N);
      continue;
    }
#endif
    std::vector<float> buf(K * B);
    unpack_block(src, B, half && !tail, columns, K, buf.data(), B);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < B; ++r) buf[k * B + r] = (buf[k * B + r] - zero[(k / group) * B + r]) * scale[(k / group) * B + r];
    for (int64_t m = 0; m < M; ++m)
      for (int64_t r = 0; r < valid; ++r) {
        float sum = 0.0f;
        for (int64_t k = 0; k < K; ++k) sum += buf[k * B + r] * d[m * blocks + k / XBLOCK] * (float)q[m * K + k];
        y[m * N + row0 + r] = sum;
      }
  }
  }
  return 0;
}

// Whether the decode loop is vectorised for "half" blocks of 32 and 64 rows (AVX2), or scalar only.
extern "C" int scalecompress_gemv_vectorised() {
#ifdef __AVX2__
  return 1;
#else
  return 0;
#endif
}
