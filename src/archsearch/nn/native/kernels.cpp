// archsearch's CPU training kernels, for float32 tensors in channels-last memory (see __init__.py for when they
// run). Written by hand because oneDNN's depthwise weight gradient has no fast path for kernels above 3x3, and
// PyTorch's batch norm makes more passes over a channels-last batch than it needs to.
//
// Vectors are 16 floats (GCC vector extensions): one AVX-512 register, two AVX2 ones; callers pass channel counts
// that are multiples of 16, except to the batch norm with affine weights, which takes any (see row_width).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <tuple>
#include <vector>

namespace {

typedef float v16 __attribute__((vector_size(64)));

inline v16 load(const float* p) {
  v16 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline void store(float* p, v16 v) { std::memcpy(p, &v, sizeof(v)); }

struct Geometry {
  int64_t H, W, Wo, C, stride, pad, dil;
};

// One output row and one block of 16 channels of a depthwise weight gradient: the K*K tap sums stay in registers.
template <int K>
void weight_grad_row(const float* grow, const float* image, int64_t ho, int64_t c0, const Geometry& s, float* out) {
  v16 acc[K * K];
  for (int t = 0; t < K * K; ++t) acc[t] = v16{};
  const float* rows[K];
  bool inside[K];
  for (int i = 0; i < K; ++i) {
    const int64_t hi = ho * s.stride - s.pad + i * s.dil;
    inside[i] = hi >= 0 && hi < s.H;
    rows[i] = image + (inside[i] ? hi : 0) * s.W * s.C + c0;
  }
  // columns whose every tap lies inside the image run without bounds checks
  int64_t lo = 0, hi = s.Wo;
  while (lo < s.Wo && lo * s.stride - s.pad < 0) ++lo;
  while (hi > lo && (hi - 1) * s.stride - s.pad + (K - 1) * s.dil >= s.W) --hi;
  for (int64_t wo = lo; wo < hi; ++wo) {
    const v16 g = load(grow + wo * s.C + c0);
    const int64_t w0 = wo * s.stride - s.pad;
#pragma GCC unroll 16
    for (int i = 0; i < K; ++i) {
      if (!inside[i]) continue;
      const float* x = rows[i] + w0 * s.C;
#pragma GCC unroll 16
      for (int j = 0; j < K; ++j) acc[i * K + j] += g * load(x + j * s.dil * s.C);
    }
  }
  for (int64_t wo = 0; wo < s.Wo; ++wo) {
    if (wo >= lo && wo < hi) continue;
    const v16 g = load(grow + wo * s.C + c0);
    for (int i = 0; i < K; ++i) {
      if (!inside[i]) continue;
      for (int j = 0; j < K; ++j) {
        const int64_t wi = wo * s.stride - s.pad + j * s.dil;
        if (wi >= 0 && wi < s.W) acc[i * K + j] += g * load(rows[i] + wi * s.C);
      }
    }
  }
  for (int t = 0; t < K * K; ++t) store(out + t * s.C + c0, load(out + t * s.C + c0) + acc[t]);
}

// Per-channel sums over the rows of an (M, C) matrix: each thread walks its rows once, all channels of a row at a
// time (16 per vector), summing blocks of rows in float and the blocks in double.
template <int N, typename Body>
std::vector<double> channel_sums(int64_t M, int64_t C, Body body) {
  const int threads = at::get_num_threads();
  const int64_t blocks = C / 16;
  constexpr int64_t kRows = 512;
  std::vector<double> part(static_cast<size_t>(threads) * N * C, 0.0);
  at::parallel_for(0, M, kRows, [&](int64_t begin, int64_t end) {
    std::vector<v16> acc(static_cast<size_t>(N) * blocks);
    double* mine = part.data() + static_cast<size_t>(at::get_thread_num()) * N * C;
    for (int64_t r0 = begin; r0 < end; r0 += kRows) {
      std::fill(acc.begin(), acc.end(), v16{});
      const int64_t r1 = std::min(end, r0 + kRows);
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t b = 0; b < blocks; ++b) body(r * C + b * 16, b * 16, acc.data() + b * N);
      for (int64_t b = 0; b < blocks; ++b)
        for (int n = 0; n < N; ++n)
          for (int l = 0; l < 16; ++l) mine[n * C + b * 16 + l] += acc[b * N + n][l];
    }
  });
  std::vector<double> sums(static_cast<size_t>(N) * C, 0.0);
  for (int t = 0; t < threads; ++t)
    for (int64_t i = 0; i < N * C; ++i) sums[i] += part[static_cast<size_t>(t) * N * C + i];
  return sums;
}

// A batch norm's output gradient g (channels-last) read 16 floats at a time, zeroed where the ReLU after it gave 0
// when ``out`` (its output) is given.
class MaskedGrad {
 public:
  MaskedGrad(const torch::Tensor& g, const c10::optional<torch::Tensor>& out) : gp_(g.data_ptr<float>()) {
    if (out.has_value()) {
      out_ = out->contiguous(at::MemoryFormat::ChannelsLast);
      yp_ = out_.data_ptr<float>();
    }
  }
  v16 operator()(int64_t i) const {
    const v16 gv = load(gp_ + i);
    return yp_ ? (load(yp_ + i) > v16{} ? gv : v16{}) : gv;
  }

 private:
  const float* gp_;
  torch::Tensor out_;
  const float* yp_ = nullptr;
};

}  // namespace

// The weight gradient of a depthwise convolution (groups == channels, no bias): x (B, C, H, W) and the output's
// gradient g (B, C, Ho, Wo), both channels-last; returns (C, 1, k, k).
torch::Tensor depthwise_weight_grad(torch::Tensor x, torch::Tensor g, int64_t k, int64_t stride, int64_t pad,
                                    int64_t dil) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && g.scalar_type() == at::kFloat, "float32 tensors expected");
  TORCH_CHECK(x.size(1) % 16 == 0, "channels must be a multiple of 16");
  TORCH_CHECK(k == 3 || k == 5 || k == 7, "kernel size 3, 5 or 7 expected");
  auto xc = x.contiguous(at::MemoryFormat::ChannelsLast);
  auto gc = g.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t B = x.size(0), C = x.size(1), Ho = g.size(2);
  const Geometry s{x.size(2), x.size(3), g.size(3), C, stride, pad, dil};
  const float* xp = xc.data_ptr<float>();
  const float* gp = gc.data_ptr<float>();
  const int64_t taps = k * k;
  const int threads = at::get_num_threads();
  std::vector<float> part(static_cast<size_t>(threads) * taps * C, 0.f);
  at::parallel_for(0, B * Ho, 1, [&](int64_t begin, int64_t end) {
    float* mine = part.data() + static_cast<size_t>(at::get_thread_num()) * taps * C;
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / Ho, ho = r % Ho;
      const float* grow = gp + r * s.Wo * C;
      const float* image = xp + b * s.H * s.W * C;
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        if (k == 3) weight_grad_row<3>(grow, image, ho, c0, s, mine);
        else if (k == 5) weight_grad_row<5>(grow, image, ho, c0, s, mine);
        else weight_grad_row<7>(grow, image, ho, c0, s, mine);
      }
    }
  });
  auto out = torch::zeros({C, 1, k, k}, x.options().memory_format(at::MemoryFormat::Contiguous));
  float* op = out.data_ptr<float>();
  for (int t = 0; t < threads; ++t) {
    const float* p = part.data() + static_cast<size_t>(t) * taps * C;
    for (int64_t tap = 0; tap < taps; ++tap)
      for (int64_t c = 0; c < C; ++c) op[c * taps + tap] += p[tap * C + c];
  }
  return out;
}

// Batch statistics of a channels-last float32 batch for a training-mode batch norm: (mean, invstd, biased var).
// One pass, as sums of x - K and (x - K)^2 with K the first row (the shifted-data algorithm: no cancellation when
// the mean is far from zero).
std::vector<torch::Tensor> norm_stats(torch::Tensor x, double eps) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.size(1) % 16 == 0, "float32, channels a multiple of 16");
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "a channels-last tensor expected");
  const int64_t C = x.size(1), M = x.numel() / C;
  const float* xp = x.data_ptr<float>();
  auto mean = torch::empty({C}, x.options()), invstd = torch::empty({C}, x.options()),
       var = torch::empty({C}, x.options());
  float* mp = mean.data_ptr<float>();
  float* ip = invstd.data_ptr<float>();
  float* vp = var.data_ptr<float>();
  auto sums = channel_sums<2>(M, C, [&](int64_t i, int64_t c0, v16* a) {
    const v16 d = load(xp + i) - load(xp + c0);
    a[0] += d;
    a[1] += d * d;
  });
  for (int64_t c = 0; c < C; ++c) {
    const double shifted_mean = sums[c] / M;
    const double v = std::max(sums[C + c] / M - shifted_mean * shifted_mean, 0.0);
    mp[c] = static_cast<float>(xp[c] + shifted_mean);
    vp[c] = static_cast<float>(v);
    ip[c] = static_cast<float>(1.0 / std::sqrt(v + eps));
  }
  return {mean, invstd, var};
}

// Training-mode batch norm without affine weights, followed by a ReLU when ``relu``: (out, mean, invstd, biased var).
std::vector<torch::Tensor> batch_norm_forward(torch::Tensor x, double eps, bool relu) {
  auto stats = norm_stats(x, eps);
  const int64_t C = x.size(1), M = x.numel() / C;
  const float* xp = x.data_ptr<float>();
  const float* mp = stats[0].data_ptr<float>();
  const float* ip = stats[1].data_ptr<float>();
  auto out = torch::empty_like(x);
  float* outp = out.data_ptr<float>();
  const v16 zero{};
  at::parallel_for(0, M, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const v16 y = (load(xp + r * C + c0) - load(mp + c0)) * load(ip + c0);
        store(outp + r * C + c0, relu ? (y > zero ? y : zero) : y);
      }
  });
  return {out, stats[0], stats[1], stats[2]};
}

// Its input gradient: dx = invstd * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean))), with g zeroed
// where the output ``out`` is not positive when the forward had a ReLU (``out`` defined), times ``scale``; and
// <g, normalised x> (the gradient of a weight that multiplied the batch norm's output).
std::tuple<torch::Tensor, double> batch_norm_backward(torch::Tensor g, torch::Tensor x, torch::Tensor mean,
                                                      torch::Tensor invstd, c10::optional<torch::Tensor> out,
                                                      double scale) {
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "a channels-last tensor expected");
  auto gc = g.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t C = x.size(1), M = x.numel() / C;
  const float* xp = x.data_ptr<float>();
  const float* mp = mean.data_ptr<float>();
  const float* ip = invstd.data_ptr<float>();
  const MaskedGrad grad(gc, out);
  auto sums = channel_sums<2>(M, C, [&](int64_t i, int64_t c0, v16* a) {
    const v16 gv = grad(i);  // sum g, sum g * (x - mean)
    a[0] += gv;
    a[1] += gv * (load(xp + i) - load(mp + c0));
  });
  std::vector<float> shift(C), slope(C), gain(C);
  double dot = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    shift[c] = static_cast<float>(sums[c] / M);
    slope[c] = static_cast<float>(sums[C + c] / M * ip[c] * ip[c]);
    gain[c] = static_cast<float>(scale * ip[c]);
    dot += sums[C + c] * ip[c];
  }
  auto dx = torch::empty_like(x);
  float* dp = dx.data_ptr<float>();
  at::parallel_for(0, M, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t i = r * C + c0;
        const v16 centred = load(xp + i) - load(mp + c0);
        store(dp + i, load(gain.data() + c0) * (grad(i) - load(shift.data() + c0) - centred * load(slope.data() + c0)));
      }
  });
  return {dx, dot};
}

// A mixed edge's output in one pass: sum_i a_i * (z_i - mean_i) * invstd_i + sum_j b_j * y_j, for batch norms
// (without affine weights) folded into the weighted sum and plain terms; all channels-last, one shape.
torch::Tensor mixed_sum(std::vector<torch::Tensor> zs, std::vector<torch::Tensor> means,
                        std::vector<torch::Tensor> invstds, std::vector<double> a, std::vector<torch::Tensor> ys,
                        std::vector<double> b) {
  TORCH_CHECK(!zs.empty() || !ys.empty(), "no terms");
  const torch::Tensor& first = zs.empty() ? ys[0] : zs[0];
  const int64_t C = first.size(1), M = first.numel() / C;
  std::vector<const float*> zp, yp;
  std::vector<float> scale(zs.size() * C), bias(C, 0.f);
  for (size_t i = 0; i < zs.size(); ++i) {
    TORCH_CHECK(zs[i].is_contiguous(at::MemoryFormat::ChannelsLast) && zs[i].sizes() == first.sizes(), "shapes");
    zp.push_back(zs[i].data_ptr<float>());
    const float* m = means[i].data_ptr<float>();
    const float* s = invstds[i].data_ptr<float>();
    for (int64_t c = 0; c < C; ++c) {
      scale[i * C + c] = static_cast<float>(a[i] * s[c]);
      bias[c] -= static_cast<float>(a[i] * s[c] * m[c]);
    }
  }
  for (auto& y : ys) {
    TORCH_CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast) && y.sizes() == first.sizes(), "shapes");
    yp.push_back(y.data_ptr<float>());
  }
  std::vector<float> bf(b.begin(), b.end());
  auto out = torch::empty_like(first);
  float* op = out.data_ptr<float>();
  at::parallel_for(0, M, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int64_t i = r * C + c0;
        v16 acc = load(bias.data() + c0);
        for (size_t t = 0; t < zp.size(); ++t) acc += load(scale.data() + t * C + c0) * load(zp[t] + i);
        for (size_t t = 0; t < yp.size(); ++t) acc += bf[t] * load(yp[t] + i);
        store(op + i, acc);
      }
  });
  return out;
}

// 3x3 average pooling with padding 1 that counts only the pixels inside the image (``count_include_pad=False``, the
// DARTS pooling op), stride 1 or 2, channels-last float32; the window of output (ho, wo) holds rows ho*s-1 .. ho*s+1.
namespace {
inline int64_t window_size(int64_t o, int64_t s, int64_t n) {
  return std::min(o * s + 1, n - 1) - std::max(o * s - 1, int64_t{0}) + 1;
}
}  // namespace

torch::Tensor avg_pool3_forward(torch::Tensor x, int64_t stride) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.size(1) % 16 == 0, "float32, channels a multiple of 16");
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "a channels-last tensor expected");
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = (H - 1) / stride + 1, Wo = (W - 1) / stride + 1;
  auto out = torch::empty({B, C, Ho, Wo}, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * Ho, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / Ho, ho = r % Ho;
      const int64_t h0 = std::max(ho * stride - 1, int64_t{0}), h1 = std::min(ho * stride + 1, H - 1);
      for (int64_t wo = 0; wo < Wo; ++wo) {
        const int64_t w0 = std::max(wo * stride - 1, int64_t{0}), w1 = std::min(wo * stride + 1, W - 1);
        const float inv = 1.0f / static_cast<float>((h1 - h0 + 1) * (w1 - w0 + 1));
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
          v16 acc{};
          for (int64_t hi = h0; hi <= h1; ++hi)
            for (int64_t wi = w0; wi <= w1; ++wi) acc += load(xp + ((b * H + hi) * W + wi) * C + c0);
          store(op + (r * Wo + wo) * C + c0, acc * inv);
        }
      }
    }
  });
  return out;
}

// Its input gradient, gathered: input pixel (hi, wi) takes g / window size from every output whose window holds it.
torch::Tensor avg_pool3_backward(torch::Tensor g, int64_t H, int64_t W, int64_t stride) {
  auto gc = g.contiguous(at::MemoryFormat::ChannelsLast);
  const int64_t B = g.size(0), C = g.size(1), Ho = g.size(2), Wo = g.size(3);
  auto dx = torch::empty({B, C, H, W}, g.options().memory_format(at::MemoryFormat::ChannelsLast));
  const float* gp = gc.data_ptr<float>();
  float* dp = dx.data_ptr<float>();
  std::vector<float> inv_w(Wo);
  for (int64_t wo = 0; wo < Wo; ++wo) inv_w[wo] = 1.0f / static_cast<float>(window_size(wo, stride, W));
  at::parallel_for(0, B * H, 1, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / H, hi = r % H;
      const int64_t ho0 = std::max((hi - 1 + stride - 1) / stride, int64_t{0});
      const int64_t ho1 = std::min((hi + 1) / stride, Ho - 1);
      for (int64_t wi = 0; wi < W; ++wi) {
        const int64_t wo0 = std::max((wi - 1 + stride - 1) / stride, int64_t{0});
        const int64_t wo1 = std::min((wi + 1) / stride, Wo - 1);
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
          v16 acc{};
          for (int64_t ho = ho0; ho <= ho1; ++ho) {
            const float inv_h = 1.0f / static_cast<float>(window_size(ho, stride, H));
            for (int64_t wo = wo0; wo <= wo1; ++wo)
              acc += load(gp + ((b * Ho + ho) * Wo + wo) * C + c0) * (inv_h * inv_w[wo]);
          }
          store(dp + (r * W + wi) * C + c0, acc);
        }
      }
    }
  });
  return dx;
}

// --- batch norm with affine weights, any channel count --------------------------------------------------------
// The batch is read as rows of L = lcm(C, 16) floats (column j holds channel j % C), so any channel count runs on
// whole vectors; per-channel figures are tiled to L columns and column sums folded back into channels.
namespace {
int64_t row_width(int64_t C) { return std::lcm<int64_t>(C, 16); }

std::vector<float> tiled(const float* per_channel, int64_t C, int64_t L) {
  std::vector<float> out(L);
  for (int64_t j = 0; j < L; ++j) out[j] = per_channel[j % C];
  return out;
}

std::vector<double> folded(const std::vector<double>& sums, int n, int64_t C, int64_t L) {
  std::vector<double> out(static_cast<size_t>(n) * C, 0.0);
  for (int k = 0; k < n; ++k)
    for (int64_t j = 0; j < L; ++j) out[k * C + j % C] += sums[k * L + j];
  return out;
}

// A batch norm's output before its ReLU, from the per-channel scale and shift: the one expression the forward pass
// and the backward pass's ReLU mask both compute, so that the mask is exactly where the forward's output was positive.
inline v16 affine(v16 x, v16 scale, v16 shift) { return x * scale + shift; }

void check_affine_input(const torch::Tensor& x) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && x.dim() == 4, "a float32 batch (B, C, H, W) expected");
  TORCH_CHECK(x.is_contiguous(at::MemoryFormat::ChannelsLast), "a channels-last tensor expected");
  TORCH_CHECK(x.numel() % row_width(x.size(1)) == 0, "B * H * W * C must be a multiple of lcm(C, 16)");
}
}  // namespace

// Training-mode batch norm with per-channel weight and bias, then a ReLU when ``relu``: (out, mean, invstd, biased
// var, scale, shift), out = relu(x * scale + shift). Statistics in one pass with each channel's first value as the
// shift (see norm_stats).
std::vector<torch::Tensor> affine_norm_forward(torch::Tensor x, torch::Tensor weight, torch::Tensor bias, double eps,
                                               bool relu) {
  check_affine_input(x);
  const int64_t C = x.size(1), L = row_width(C), R = x.numel() / L, M = x.numel() / C;
  auto wc = weight.contiguous(), bc = bias.contiguous();
  const float* xp = x.data_ptr<float>();
  const std::vector<float> first = tiled(xp, C, L);
  auto sums = folded(channel_sums<2>(R, L, [&](int64_t i, int64_t c0, v16* a) {
    const v16 d = load(xp + i) - load(first.data() + c0);
    a[0] += d;
    a[1] += d * d;
  }), 2, C, L);
  auto mean = torch::empty({C}, x.options()), invstd = torch::empty({C}, x.options()),
       var = torch::empty({C}, x.options()), scale_c = torch::empty({C}, x.options()),
       shift_c = torch::empty({C}, x.options());
  float* mp = mean.data_ptr<float>();
  float* ip = invstd.data_ptr<float>();
  float* vp = var.data_ptr<float>();
  float* scale = scale_c.data_ptr<float>();
  float* shift = shift_c.data_ptr<float>();
  const float* w = wc.data_ptr<float>();
  const float* b = bc.data_ptr<float>();
  for (int64_t c = 0; c < C; ++c) {
    const double shifted_mean = sums[c] / M;
    const double v = std::max(sums[C + c] / M - shifted_mean * shifted_mean, 0.0);
    mp[c] = static_cast<float>(xp[c] + shifted_mean);
    vp[c] = static_cast<float>(v);
    ip[c] = static_cast<float>(1.0 / std::sqrt(v + eps));
    scale[c] = w[c] * ip[c];
    shift[c] = b[c] - mp[c] * scale[c];
  }
  const std::vector<float> scale_t = tiled(scale, C, L), shift_t = tiled(shift, C, L);
  auto out = torch::empty_like(x);
  float* outp = out.data_ptr<float>();
  const v16 zero{};
  at::parallel_for(0, R, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c0 = 0; c0 < L; c0 += 16) {
        const v16 y = affine(load(xp + r * L + c0), load(scale_t.data() + c0), load(shift_t.data() + c0));
        store(outp + r * L + c0, relu ? (y > zero ? y : zero) : y);
      }
  });
  return {out, mean, invstd, var, scale_c, shift_c};
}

// Its gradients (dx, dweight, dbias). When the forward had a ReLU, ``relu`` holds its (scale, shift) and g is zeroed
// where x * scale + shift is not positive: the forward's output recomputed, not read, which saves two passes over a
// tensor the size of x. dx = weight * invstd * (g - mean(g) - (x - mean) * invstd^2 * mean(g * (x - mean))).
std::vector<torch::Tensor> affine_norm_backward(torch::Tensor g, torch::Tensor x, torch::Tensor mean,
                                                torch::Tensor invstd, torch::Tensor weight,
                                                c10::optional<std::vector<torch::Tensor>> relu) {
  check_affine_input(x);
  auto gc = g.contiguous(at::MemoryFormat::ChannelsLast);
  auto wc = weight.contiguous();
  const int64_t C = x.size(1), L = row_width(C), R = x.numel() / L, M = x.numel() / C;
  TORCH_CHECK(!relu.has_value() || (relu->size() == 2 && (*relu)[0].numel() == C && (*relu)[1].numel() == C),
              "the ReLU's scale and shift, C values each, expected");
  const float* xp = x.data_ptr<float>();
  const float* gp = gc.data_ptr<float>();
  const float* ip = invstd.data_ptr<float>();
  const float* w = wc.data_ptr<float>();
  const std::vector<float> mean_t = tiled(mean.data_ptr<float>(), C, L);
  const bool masked = relu.has_value();
  std::vector<float> scale_t, shift_t;
  if (masked) {
    scale_t = tiled((*relu)[0].contiguous().data_ptr<float>(), C, L);
    shift_t = tiled((*relu)[1].contiguous().data_ptr<float>(), C, L);
  }
  const auto grad = [&](int64_t i, int64_t c0, v16 xv) {
    const v16 gv = load(gp + i);
    return masked && !(affine(xv, load(scale_t.data() + c0), load(shift_t.data() + c0)) > v16{}) ? v16{} : gv;
  };
  auto sums = folded(channel_sums<2>(R, L, [&](int64_t i, int64_t c0, v16* a) {
    const v16 xv = load(xp + i);
    const v16 gv = grad(i, c0, xv);  // sum g, sum g * (x - mean)
    a[0] += gv;
    a[1] += gv * (xv - load(mean_t.data() + c0));
  }), 2, C, L);
  auto dweight = torch::empty({C}, x.options()), dbias = torch::empty({C}, x.options());
  float* dw = dweight.data_ptr<float>();
  float* db = dbias.data_ptr<float>();
  std::vector<float> gain(C), offset(C), slope(C);
  for (int64_t c = 0; c < C; ++c) {
    dw[c] = static_cast<float>(sums[C + c] * ip[c]);
    db[c] = static_cast<float>(sums[c]);
    gain[c] = w[c] * ip[c];
    offset[c] = static_cast<float>(sums[c] / M);
    slope[c] = static_cast<float>(sums[C + c] / M * ip[c] * ip[c]);
  }
  const std::vector<float> gain_t = tiled(gain.data(), C, L), offset_t = tiled(offset.data(), C, L),
                           slope_t = tiled(slope.data(), C, L);
  auto dx = torch::empty_like(x);
  float* dp = dx.data_ptr<float>();
  at::parallel_for(0, R, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      for (int64_t c0 = 0; c0 < L; c0 += 16) {
        const int64_t i = r * L + c0;
        const v16 xv = load(xp + i);
        const v16 centred = xv - load(mean_t.data() + c0);
        store(dp + i, load(gain_t.data() + c0) *
                          (grad(i, c0, xv) - load(offset_t.data() + c0) - centred * load(slope_t.data() + c0)));
      }
  });
  return {dx, dweight, dbias};
}

// A batch norm module's running statistics after a training-mode batch of ``n`` values per channel with this mean
// and biased variance, as PyTorch updates them (``momentum`` < 0: the cumulative average).
void update_running_stats(torch::Tensor running_mean, torch::Tensor running_var, torch::Tensor batches,
                          torch::Tensor mean, torch::Tensor var, double momentum, int64_t n) {
  TORCH_CHECK(running_mean.is_contiguous() && running_var.is_contiguous() && running_mean.scalar_type() == at::kFloat,
              "float32 running statistics expected");
  const int64_t count = ++*batches.data_ptr<int64_t>();
  const double m = momentum < 0 ? 1.0 / static_cast<double>(count) : momentum;
  const double correction = static_cast<double>(n) / static_cast<double>(std::max<int64_t>(n - 1, 1));
  float* rm = running_mean.data_ptr<float>();
  float* rv = running_var.data_ptr<float>();
  const float* bm = mean.data_ptr<float>();
  const float* bv = var.data_ptr<float>();
  for (int64_t c = 0; c < running_mean.numel(); ++c) {
    rm[c] = static_cast<float>(rm[c] + m * (bm[c] - rm[c]));
    rv[c] = static_cast<float>(rv[c] + m * (bv[c] * correction - rv[c]));
  }
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("update_running_stats", &update_running_stats, "a batch norm's running statistics");
  m.def("avg_pool3_forward", &avg_pool3_forward, "3x3 average pooling, padding 1, pixels inside only");
  m.def("avg_pool3_backward", &avg_pool3_backward, "its input gradient");
  m.def("depthwise_weight_grad", &depthwise_weight_grad, "depthwise convolution weight gradient");
  m.def("batch_norm_forward", &batch_norm_forward, "training-mode batch norm, no affine weights, optional ReLU");
  m.def("batch_norm_backward", &batch_norm_backward, "its input gradient");
  m.def("batch_norm_stats", &norm_stats, "batch statistics");
  m.def("affine_norm_forward", &affine_norm_forward, "training-mode batch norm with weight and bias, optional ReLU");
  m.def("affine_norm_backward", &affine_norm_backward, "its gradients (input, weight, bias)");
  m.def("mixed_sum", &mixed_sum, "a mixed edge's weighted sum with batch norms folded in");
}
