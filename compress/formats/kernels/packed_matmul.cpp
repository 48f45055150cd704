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
// scalecompress_packed_gemv (a few rows, decoding): codes times x summed per group in fp32,
// then scale * (sum - zero * sum of x over the group) once per group.
//
// Layout (compress.formats.cpu_int4): full blocks of `block` rows, then a tail of rows % block
// rows packed in pairs. Inside a block of B rows the bytes are column-major, B/2 per column;
// byte j holds rows (j, j + B/2) ("half": the AVX2/AVX512 lanes) or (2j, 2j + 1) ("pairs"), low
// nibble first. 5-8-bit codes ("split") come as 2K columns: high nibbles, then low nibbles.
#include <cstdint>
#include <cstring>
#include <vector>
#include <algorithm>
#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

typedef void (*sgemm_fn)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);

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

// acc[0..3] += the 32 codes of column c of a "half" block (rows 0-15 low nibbles, 16-31 high) * x[c].
static inline void column32(const uint8_t* src, int64_t c, int64_t K, bool split, __m256 xv, __m256* acc) {
  const __m128i low = _mm_set1_epi8(0x0F), high = _mm_set1_epi8(static_cast<char>(0xF0));
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + c * 16));
  __m128i first = _mm_and_si128(bytes, low), last = _mm_and_si128(_mm_srli_epi16(bytes, 4), low);
  if (split) {
    const __m128i lows = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (c + K) * 16));
    first = _mm_or_si128(_mm_and_si128(_mm_slli_epi16(bytes, 4), high), _mm_and_si128(lows, low));
    last = _mm_or_si128(_mm_and_si128(bytes, high), _mm_and_si128(_mm_srli_epi16(lows, 4), low));
  }
  acc[0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(first)), xv, acc[0]);
  acc[1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(first, 8))), xv, acc[1]);
  acc[2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(last)), xv, acc[2]);
  acc[3] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(last, 8))), xv, acc[3]);
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
    const float* x, int64_t M, int64_t K,          // activations (M, K), row-major
    const uint8_t* packed, int64_t rows, int64_t columns, int64_t block, int half,
    const uint16_t* scales, const uint16_t* zeros, int64_t G, float default_zero, int64_t group,
    float* y, int64_t N,                           // output (M, N), row-major; N <= rows
    int64_t tile_floats, int threads, sgemm_fn sgemm) {
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

// Decoding: y = x @ W.T for a few token rows, straight from the packed codes (no tile buffer).
// Per block of B output rows and per quantization group, the codes times x are summed in fp32,
// then y += scale * (sum - zero * sum(x over the group)). Full "half" blocks run the AVX2 loop;
// tail blocks (pairs) are dequantized like the prefill tiles and multiplied scalar.
extern "C" int scalecompress_packed_gemv(
    const float* x, int64_t M, int64_t K,
    const uint8_t* packed, int64_t rows, int64_t columns, int64_t block, int half,
    const uint16_t* scales, const uint16_t* zeros, int64_t G, float default_zero, int64_t group,
    float* y, int64_t N, int threads) {
  if (columns != K && columns != 2 * K) return 1;
  const bool split = columns != K;
  const int64_t full = rows / block;
  const int64_t count = full + (rows > full * block ? 1 : 0);
  std::vector<float> group_sums(M * G, 0.0f);  // sum of x over each group: the zero points' term
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; ++k) group_sums[m * G + k / group] += x[m * K + k];
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
    if (!tail && half && B == 32) {
      for (int64_t m = 0; m < M; ++m) {
        const float* xm = x + m * K;
        __m256 out[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t g = 0; g < G; ++g) {
          // two columns per step, each with its own accumulators: FMA latency, not a chain
          __m256 acc[8];
          for (int q = 0; q < 8; ++q) acc[q] = _mm256_setzero_ps();
          const int64_t begin = g * group, end = std::min(K, (g + 1) * group);
          int64_t c = begin;
          for (; c + 1 < end; c += 2) {
            column32(src, c, K, split, _mm256_set1_ps(xm[c]), acc);
            column32(src, c + 1, K, split, _mm256_set1_ps(xm[c + 1]), acc + 4);
          }
          if (c < end) column32(src, c, K, split, _mm256_set1_ps(xm[c]), acc);
          const __m256 xs = _mm256_set1_ps(group_sums[m * G + g]);
          for (int q = 0; q < 4; ++q) {
            const __m256 z = _mm256_loadu_ps(zero.data() + g * B + 8 * q), sc = _mm256_loadu_ps(scale.data() + g * B + 8 * q);
            out[q] = _mm256_fmadd_ps(sc, _mm256_fnmadd_ps(z, xs, _mm256_add_ps(acc[q], acc[q + 4])), out[q]);
          }
        }
        float result[32];
        for (int q = 0; q < 4; ++q) _mm256_storeu_ps(result + 8 * q, out[q]);
        for (int64_t r = 0; r < valid; ++r) y[m * N + row0 + r] = result[r];
      }
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
        for (int64_t k = 0; k < K; ++k) sum += buf[k * B + r] * x[m * K + k];
        y[m * N + row0 + r] = sum;
      }
  }
  }
  return 0;
}

// The block size of the "half" layout the vectorised decode loop handles (0: none, scalar only).
extern "C" int scalecompress_gemv_block() {
#ifdef __AVX2__
  return 32;
#else
  return 0;
#endif
}
