// Spike delivery for networks as XLA FFI custom calls for the CPU, built at first use by
// brainfuse_kernels._spikes. Connectivity is one CSR by source neuron: row s holds the synapses
// indptr[s] .. indptr[s+1]-1 with target column cols[k] of the ring buffer, weight w[k] and delay
// delay[k] (steps >= 1; an empty `delay` means every synapse has the delay `uniform_delay`).
// The ring buffer of one network is (depth, columns), flattened; a spike of source s in step t
// adds spike[s] * w[k] to ring[(t + delay[k]) % depth, cols[k]] (delivered in step t + delay).
//
// bf_deliver_*: ring_out = ring + deliveries (ring aliased to ring_out), work in proportion to the
//   synapses of the sources that spiked (spike != 0).
// bf_deliver_vjp_*: the transpose: ct_spike[s] = sum_k w[k] ct_ring[slot_k, cols[k]] over every
//   source (the spike's cotangent exists whether it fired or not: surrogate gradients), and
//   ct_w[k] = sum over the batch of spike[s] ct_ring[slot_k, cols[k]] (only firing sources).
// bf_record_*: append the (step, id) of every spike (spike != 0) to per-row buffers of `capacity`
//   entries; `count` keeps counting past the capacity (the overflow flag), nothing more is written.
// Leading batch: ring (B, depth * columns), spike (B, N), t (B,); connectivity shared.
#include <cstdint>
#include <cstring>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

template <ffi::DataType DT>
static ffi::Error Deliver(ffi::Buffer<DT> ring, ffi::Buffer<DT> spike, ffi::Buffer<ffi::S32> t,
                         ffi::Buffer<ffi::S32> indptr, ffi::Buffer<ffi::S32> cols, ffi::Buffer<DT> w,
                         ffi::Buffer<ffi::S16> delay, int64_t depth, int64_t uniform_delay,
                         ffi::ResultBuffer<DT> out) {
  using T = ffi::NativeType<DT>;
  const int64_t batch = static_cast<int64_t>(t.element_count());
  const int64_t n = static_cast<int64_t>(indptr.element_count()) - 1;
  if (batch == 0) return ffi::Error::Success();
  const int64_t width = static_cast<int64_t>(ring.element_count()) / batch;
  const int64_t columns = width / depth;
  if (n < 0 || static_cast<int64_t>(spike.element_count()) != batch * n || width != depth * columns) {
    return ffi::Error::InvalidArgument("bf_deliver: shapes of ring (B, depth*columns), spike (B, N), t (B,) disagree");
  }
  const bool uniform = delay.element_count() == 0;
  const int32_t* ip = indptr.typed_data();
  const int32_t* c = cols.typed_data();
  const T* wk = w.typed_data();
  const int16_t* dk = delay.typed_data();
  T* o = out->typed_data();
  if (o != ring.typed_data()) std::memcpy(o, ring.typed_data(), sizeof(T) * ring.element_count());
  for (int64_t b = 0; b < batch; ++b) {
    const T* sp = spike.typed_data() + b * n;
    T* r = o + b * width;
    const int64_t tb = t.typed_data()[b];
    for (int64_t s = 0; s < n; ++s) {
      const T x = sp[s];
      if (x == T(0)) continue;
      const int64_t lo = ip[s], hi = ip[s + 1];
      if (uniform) {
        T* row = r + ((tb + uniform_delay) % depth) * columns;
        for (int64_t k = lo; k < hi; ++k) row[c[k]] += x * wk[k];
      } else {
        for (int64_t k = lo; k < hi; ++k) r[((tb + dk[k]) % depth) * columns + c[k]] += x * wk[k];
      }
    }
  }
  return ffi::Error::Success();
}

template <ffi::DataType DT>
static ffi::Error DeliverVjp(ffi::Buffer<DT> ct_ring, ffi::Buffer<DT> spike, ffi::Buffer<ffi::S32> t,
                            ffi::Buffer<ffi::S32> indptr, ffi::Buffer<ffi::S32> cols, ffi::Buffer<DT> w,
                            ffi::Buffer<ffi::S16> delay, int64_t depth, int64_t uniform_delay,
                            ffi::ResultBuffer<DT> ct_spike, ffi::ResultBuffer<DT> ct_w) {
  using T = ffi::NativeType<DT>;
  const int64_t batch = static_cast<int64_t>(t.element_count());
  const int64_t n = static_cast<int64_t>(indptr.element_count()) - 1;
  T* cw = ct_w->typed_data();
  std::memset(cw, 0, sizeof(T) * ct_w->element_count());
  if (batch == 0) return ffi::Error::Success();
  const int64_t width = static_cast<int64_t>(ct_ring.element_count()) / batch;
  const int64_t columns = width / depth;
  const bool uniform = delay.element_count() == 0;
  const int32_t* ip = indptr.typed_data();
  const int32_t* c = cols.typed_data();
  const T* wk = w.typed_data();
  const int16_t* dk = delay.typed_data();
  for (int64_t b = 0; b < batch; ++b) {
    const T* sp = spike.typed_data() + b * n;
    const T* g = ct_ring.typed_data() + b * width;
    T* cs = ct_spike->typed_data() + b * n;
    const int64_t tb = t.typed_data()[b];
    for (int64_t s = 0; s < n; ++s) {
      const int64_t lo = ip[s], hi = ip[s + 1];
      const T x = sp[s];
      T acc = T(0);
      if (uniform) {
        const T* row = g + ((tb + uniform_delay) % depth) * columns;
        for (int64_t k = lo; k < hi; ++k) acc += wk[k] * row[c[k]];
        if (x != T(0))
          for (int64_t k = lo; k < hi; ++k) cw[k] += x * row[c[k]];
      } else {
        for (int64_t k = lo; k < hi; ++k) acc += wk[k] * g[((tb + dk[k]) % depth) * columns + c[k]];
        if (x != T(0))
          for (int64_t k = lo; k < hi; ++k) cw[k] += x * g[((tb + dk[k]) % depth) * columns + c[k]];
      }
      cs[s] = acc;
    }
  }
  return ffi::Error::Success();
}

#define BF_DELIVER_ARGS(DT)                                                                           \
  .Arg<ffi::Buffer<DT>>()                                                                             \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<ffi::S16>>()                                                                   \
      .Attr<int64_t>("depth")                                                                         \
      .Attr<int64_t>("uniform_delay")

XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_deliver_f32, Deliver<ffi::F32>,
                              ffi::Ffi::Bind() BF_DELIVER_ARGS(ffi::F32).Ret<ffi::Buffer<ffi::F32>>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_deliver_f64, Deliver<ffi::F64>,
                              ffi::Ffi::Bind() BF_DELIVER_ARGS(ffi::F64).Ret<ffi::Buffer<ffi::F64>>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_deliver_vjp_f32, DeliverVjp<ffi::F32>,
                              ffi::Ffi::Bind() BF_DELIVER_ARGS(ffi::F32).Ret<ffi::Buffer<ffi::F32>>().Ret<ffi::Buffer<ffi::F32>>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_deliver_vjp_f64, DeliverVjp<ffi::F64>,
                              ffi::Ffi::Bind() BF_DELIVER_ARGS(ffi::F64).Ret<ffi::Buffer<ffi::F64>>().Ret<ffi::Buffer<ffi::F64>>());

template <ffi::DataType DT>
static ffi::Error Record(ffi::Buffer<ffi::S32> steps, ffi::Buffer<ffi::S32> ids, ffi::Buffer<ffi::S32> count,
                         ffi::Buffer<DT> spike, ffi::Buffer<ffi::S32> t, ffi::ResultBuffer<ffi::S32> steps_out,
                         ffi::ResultBuffer<ffi::S32> ids_out, ffi::ResultBuffer<ffi::S32> count_out) {
  using T = ffi::NativeType<DT>;
  const int64_t batch = static_cast<int64_t>(t.element_count());
  if (batch == 0) return ffi::Error::Success();
  const int64_t capacity = static_cast<int64_t>(steps.element_count()) / batch;
  const int64_t n = static_cast<int64_t>(spike.element_count()) / batch;
  int32_t* so = steps_out->typed_data();
  int32_t* io = ids_out->typed_data();
  int32_t* co = count_out->typed_data();
  if (so != steps.typed_data()) std::memcpy(so, steps.typed_data(), sizeof(int32_t) * steps.element_count());
  if (io != ids.typed_data()) std::memcpy(io, ids.typed_data(), sizeof(int32_t) * ids.element_count());
  for (int64_t b = 0; b < batch; ++b) {
    const T* sp = spike.typed_data() + b * n;
    int64_t c = count.typed_data()[b];
    const int32_t tb = t.typed_data()[b];
    for (int64_t s = 0; s < n; ++s) {
      if (sp[s] == T(0)) continue;
      if (c < capacity) {
        so[b * capacity + c] = tb;
        io[b * capacity + c] = static_cast<int32_t>(s);
      }
      if (c < INT32_MAX) ++c;
    }
    co[b] = static_cast<int32_t>(c);
  }
  return ffi::Error::Success();
}

#define BF_RECORD_BINDING(DT)                                                                         \
  ffi::Ffi::Bind()                                                                                    \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Arg<ffi::Buffer<DT>>()                                                                         \
      .Arg<ffi::Buffer<ffi::S32>>()                                                                   \
      .Ret<ffi::Buffer<ffi::S32>>()                                                                   \
      .Ret<ffi::Buffer<ffi::S32>>()                                                                   \
      .Ret<ffi::Buffer<ffi::S32>>()

XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_record_f32, Record<ffi::F32>, BF_RECORD_BINDING(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(bf_record_f64, Record<ffi::F64>, BF_RECORD_BINDING(ffi::F64));
