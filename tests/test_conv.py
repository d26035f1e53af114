"""Conv2d, ConvTranspose2d, Flatten, Reshape: VJP checks (hypothesis, float64), agreement
with a naive loop implementation (and torch, when installed), dtype, init and misuse errors."""
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from npgan import assert_gradients_ok, check_layer, get_backend
from npgan.conv import Conv2d, ConvTranspose2d, Flatten, Reshape, col2im, im2col
from npgan.fast import conv as fast_conv
from tests.backends import ALL_SPECS, FLOAT64_SPECS, FLOAT64_SPECS_STRICT_SLOW, host, make_backend

# the float64 checks on array-api-strict are slow: a fraction of the profile's examples
# (30 by default, 300 with HYPOTHESIS_PROFILE=thorough)
FEW = max(4, settings.default.max_examples // 4)
values = {"min_value": -3.0, "max_value": 3.0, "allow_nan": False, "allow_infinity": False}


# ------------------------------------------------------------------ references
def naive_conv2d(x, W, b, s, p):
    """The definition, one output pixel at a time: y[b, o, i, j] = sum(window * W[o]) + b[o]."""
    B, _, H, Wd = x.shape
    out, _, k, _ = W.shape
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    OH, OW = (H + 2 * p - k) // s + 1, (Wd + 2 * p - k) // s + 1
    y = np.zeros((B, out, OH, OW))
    for n in range(B):
        for o in range(out):
            for i in range(OH):
                for j in range(OW):
                    y[n, o, i, j] = np.sum(x[n, :, i * s:i * s + k, j * s:j * s + k] * W[o]) + b[o]
    return y


def naive_conv_transpose2d(x, W, b, s, p, op):
    """The definition: every input pixel stamps x[b, c, h, w] * W[c] at (h*s - p, w*s - p)."""
    B, C, H, Wd = x.shape
    _, out, k, _ = W.shape
    OH, OW = (H - 1) * s - 2 * p + k + op, (Wd - 1) * s - 2 * p + k + op
    y = np.zeros((B, out, OH + 2 * p + k, OW + 2 * p + k))  # room for every stamp
    for n in range(B):
        for c in range(C):
            for h in range(H):
                for w in range(Wd):
                    y[n, :, h * s:h * s + k, w * s:w * s + k] += x[n, c, h, w] * W[c]
    return y[:, :, p:p + OH, p:p + OW] + b[None, :, None, None]


def reference_im2col(x, k, s, p):
    """im2col by its definition, one number at a time (the fast paths must match it):
    cols[(c, i, j), (oh, ow, b)] = x_pad[b, c, oh*s + i, ow*s + j]."""
    B, C, H, W = x.shape
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    cols = np.zeros((C * k * k, OH * OW * B), dtype=x.dtype)
    for c in range(C):
        for i in range(k):
            for j in range(k):
                for oh in range(OH):
                    for ow in range(OW):
                        for b in range(B):
                            cols[(c * k + i) * k + j, (oh * OW + ow) * B + b] = \
                                x[b, c, oh * s + i, ow * s + j]
    return cols


def reference_col2im(cols, x_shape, k, s, p):
    """col2im by its definition: every entry of cols added onto its pixel, one by one."""
    B, C, H, W = x_shape
    OH, OW = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    x = np.zeros((B, C, H + 2 * p, W + 2 * p), dtype=cols.dtype)
    for c in range(C):
        for i in range(k):
            for j in range(k):
                for oh in range(OH):
                    for ow in range(OW):
                        for b in range(B):
                            x[b, c, oh * s + i, ow * s + j] += \
                                cols[(c * k + i) * k + j, (oh * OW + ow) * B + b]
    return x[:, :, p:p + H, p:p + W]


# ------------------------------------------------------------------ random cases
@st.composite
def conv_case(draw, transpose=False):
    """(B, in, out, k, s, p, output_padding, H, W): small, and a valid geometry."""
    k, s, p = draw(st.integers(1, 4)), draw(st.integers(1, 2)), draw(st.integers(0, 2))
    op = draw(st.integers(0, s - 1)) if transpose else 0
    low = 1 if transpose else max(1, k - 2 * p)          # a conv needs H + 2p >= k
    H, W = draw(st.integers(low, low + 3)), draw(st.integers(low, low + 3))
    if transpose:                                         # a non-empty output
        assume(min(H, W) - 1 >= 0 and (min(H, W) - 1) * s - 2 * p + k + op >= 1)
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2)),
            k, s, p, op, H, W)


def make_layer(case, be, transpose, init="default"):
    B, c_in, c_out, k, s, p, op, H, W = case
    if transpose:
        return ConvTranspose2d(c_in, c_out, k, s, p, op, backend=be, init=init)
    return Conv2d(c_in, c_out, k, s, p, backend=be, init=init)


def out_shape(case, transpose):
    B, c_in, c_out, k, s, p, op, H, W = case
    if transpose:
        return (B, c_out, (H - 1) * s - 2 * p + k + op, (W - 1) * s - 2 * p + k + op)
    return (B, c_out, (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)


# ------------------------------------------------------------------ VJP checks
@pytest.mark.parametrize("spec", FLOAT64_SPECS_STRICT_SLOW)
@pytest.mark.parametrize("transpose", [False, True], ids=["Conv2d", "ConvTranspose2d"])
@settings(max_examples=FEW)
@given(data=st.data())
def test_conv_vjp(spec, transpose, data):
    case = data.draw(conv_case(transpose))
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    layer = make_layer(case, be, transpose, init=data.draw(st.sampled_from(["default", "normal"])))
    B, c_in, _, _, _, _, _, H, W = case
    x = data.draw(arrays(np.float64, (B, c_in, H, W), elements=values))
    dout = data.draw(arrays(np.float64, out_shape(case, transpose), elements=values))
    reports = check_layer(layer, be.asarray(x), be.asarray(dout))
    assert [r.name for r in reports] == ["x", "W", "b"]
    assert_gradients_ok(reports)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
def test_flatten_and_reshape_vjp(spec):
    be = make_backend(spec, "float64", seed=1)
    assert_gradients_ok(check_layer(Flatten(), be.randn((2, 3, 2, 2)), be.randn((2, 12))))
    assert_gradients_ok(check_layer(Reshape((3, 2, 2)), be.randn((2, 12)), be.randn((2, 3, 2, 2))))


# ------------------------------------------------------------------ against references
@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@pytest.mark.parametrize("transpose", [False, True], ids=["Conv2d", "ConvTranspose2d"])
@settings(max_examples=2 * FEW)
@given(data=st.data())
def test_forward_matches_the_naive_loops(spec, transpose, data):
    case = data.draw(conv_case(transpose))
    be = make_backend(spec, "float64", seed=data.draw(st.integers(0, 1000)))
    layer = make_layer(case, be, transpose)
    B, c_in, _, _, s, p, op, H, W = case
    x = be.randn((B, c_in, H, W))
    Wt, b, xh = host(layer.W.data), host(layer.b.data), host(x)
    expected = (naive_conv_transpose2d(xh, Wt, b, s, p, op) if transpose
                else naive_conv2d(xh, Wt, b, s, p))
    np.testing.assert_allclose(host(layer.forward(x)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("spec", FLOAT64_SPECS)
@settings(max_examples=2 * FEW)
@given(case=conv_case(), path=st.sampled_from(["reference", "fast", "fast, reused buffers"]))
def test_im2col_and_col2im_match_the_reference_loops_exactly(spec, case, path):
    """npgan/conv.py's slices and loops, and npgan/fast/conv.py's strided views and phase
    sums (NumPy, CuPy; array-api-strict falls back to the slices), all equal the
    definitions bit for bit: small integers make every sum exact, whatever the order of
    the adds. With reused buffers, a second call with other numbers gives the second
    answer (no stale values left in the buffers)."""
    B, c_in, _, k, s, p, _, H, W = case
    be = make_backend(spec, "float64")
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    buffers = {} if path == "fast, reused buffers" else None
    if path == "reference":
        gather, scatter = im2col, col2im
    else:
        gather = lambda x, k, s, p: fast_conv.im2col(x, k, s, p, buffers)           # noqa: E731
        scatter = lambda c, shape, k, s, p: fast_conv.col2im(c, shape, k, s, p, buffers)  # noqa: E731
    for _ in range(2):
        x = rng.integers(-9, 10, (B, c_in, H, W)).astype(np.float64)
        cols = host(gather(be.asarray(x), k, s, p))
        np.testing.assert_array_equal(cols, reference_im2col(x, k, s, p))
        c = rng.integers(-9, 10, cols.shape).astype(np.float64)
        back = host(scatter(be.asarray(c), x.shape, k, s, p))
        np.testing.assert_array_equal(back, reference_col2im(c, x.shape, k, s, p))


def test_the_reference_loops_can_tell_a_wrong_layout():
    """Control: the exact test above fails for cols in the (b, oh, ow) column order."""
    be = get_backend("numpy", dtype="float64")
    x = np.arange(2 * 1 * 4 * 4, dtype=np.float64).reshape(2, 1, 4, 4)
    cols = im2col(be.asarray(x), 2, 2, 0)                          # (4, L*B) = (4, 8)
    wrong = np.reshape(np.reshape(cols, (4, 4, 2)).transpose(0, 2, 1), (4, 8))
    np.testing.assert_array_equal(cols, reference_im2col(x, 2, 2, 0))
    assert not np.array_equal(wrong, reference_im2col(x, 2, 2, 0))


@given(case=conv_case())
@example(case=(2, 2, 1, 4, 1, 2, 0, 3, 2))      # failed with rtol=1e-12 on the sum
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), c> == <x, col2im(c)>: the identity that makes col2im the gradient."""
    B, c_in, _, k, s, p, _, H, W = case
    be = get_backend("numpy", dtype="float64", seed=2)
    x = be.randn((B, c_in, H, W))
    cols = im2col(x, k, s, p)
    c = be.randn(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, k, s, p))
    # Both sides add the same products x[j] * c[i], in other orders, so they differ by
    # rounding on the scale of sum |x[j] * c[i]|, not of the sum (which can cancel to
    # ~0: case (2, 2, 1, 4, 1, 2, 0, 3, 2) differed by 2.7e-15 on -0.000927).
    scale = np.sum(np.abs(cols * c))
    assert abs(lhs - rhs) <= 16 * np.finfo(np.float64).eps * scale, (lhs, rhs, scale)


def test_conv_transpose_is_the_input_gradient_of_conv():
    """With the same weight tensor (Conv2d's (out, in, k, k) read as ConvTranspose2d's
    (in, out, k, k)) and no bias, ConvTranspose2d(dy) == Conv2d.backward(dy)."""
    be = get_backend("numpy", dtype="float64", seed=3)
    conv = Conv2d(3, 4, 4, 2, 1, backend=be)
    convt = ConvTranspose2d(4, 3, 4, 2, 1, output_padding=1, backend=be)
    convt.W.data[...] = conv.W.data
    convt.b.data[...] = 0.0
    x = be.randn((2, 3, 9, 9))                 # 9 -> 4 -> 9 needs output_padding 1
    dy = be.randn(conv.forward(x).shape)
    np.testing.assert_allclose(convt.forward(dy), conv.backward(dy), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("transpose", [False, True], ids=["Conv2d", "ConvTranspose2d"])
def test_against_torch(transpose):
    torch = pytest.importorskip("torch")
    be = get_backend("numpy", dtype="float64", seed=4)
    layer = (ConvTranspose2d(3, 2, 4, 2, 1, 1, backend=be) if transpose
             else Conv2d(3, 2, 3, 2, 1, backend=be))
    x, dout = be.randn((2, 3, 6, 5)), None
    y = layer.forward(x)
    dout = be.randn(y.shape)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    op = torch.nn.functional.conv_transpose2d if transpose else torch.nn.functional.conv2d
    kw = {"output_padding": 1} if transpose else {}
    ty = op(tx, torch.tensor(layer.W.data, requires_grad=True), torch.tensor(layer.b.data),
            stride=2, padding=1, **kw)
    ty.backward(torch.tensor(dout))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ dtype, init, contract
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_float32_in_float32_out(spec):
    be = make_backend(spec, "float32")
    for layer, shape in [(Conv2d(2, 3, 4, 2, 1, backend=be), (2, 2, 6, 6)),
                         (ConvTranspose2d(2, 3, 4, 2, 1, backend=be), (2, 2, 3, 3)),
                         (Flatten(), (2, 2, 3, 3)), (Reshape((2, 3)), (2, 6))]:
        y = layer.forward(be.randn(shape))
        dx = layer.backward(be.randn(tuple(y.shape)))
        assert y.dtype == be.dtype and dx.dtype == be.dtype and tuple(dx.shape) == shape, layer
        for name, p in layer.named_parameters():
            assert p.data.dtype == be.dtype and p.grad.dtype == be.dtype, (layer, name)


def test_pytorch_default_init_bounds_and_normal_init():
    be = get_backend("numpy", seed=5)
    conv = Conv2d(16, 32, 3, backend=be)                     # fan_in = in * k * k = 144
    convt = ConvTranspose2d(16, 32, 3, backend=be)           # PyTorch: fan_in = out * k * k = 288
    for layer, fan_in in [(conv, 144), (convt, 288)]:
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(layer.W.data).max() <= bound and np.abs(layer.b.data).max() <= bound
        assert np.abs(layer.W.data).max() > 0.95 * bound
    normal = Conv2d(64, 64, 4, backend=be, init="normal")
    assert abs(float(normal.W.data.std()) - 0.02) < 0.001 and not normal.b.data.any()
    assert conv.W.shape == (32, 16, 3, 3) and convt.W.shape == (16, 32, 3, 3)


def test_param_grads_false_gives_the_same_dx_and_no_weight_gradients():
    be = get_backend("numpy", dtype="float64", seed=6)
    for layer in [Conv2d(2, 3, 3, 2, 1, backend=be), ConvTranspose2d(2, 3, 3, 2, 1, backend=be)]:
        x = be.randn((2, 2, 5, 5))
        dout = be.randn(layer.forward(x).shape)
        dx_full = layer.backward(dout)
        layer.zero_grad()
        layer.forward(x)
        kept = dout.copy()
        np.testing.assert_array_equal(layer.backward(dout, param_grads=False), dx_full)
        np.testing.assert_array_equal(dout, kept)            # the caller's dout is untouched
        assert not layer.W.grad.any() and not layer.b.grad.any()


def test_misuse_raises_clear_errors():
    be = get_backend("numpy")
    conv = Conv2d(3, 8, 4, 2, 1, backend=be)
    with pytest.raises(ValueError, match=r"shape \(B, 3, H, W\), got \(2, 1, 8, 8\)"):
        conv.forward(be.randn((2, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"expects input of shape \(B, 3, H, W\), got \(2, 192\)"):
        conv.forward(be.randn((2, 192)))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        Conv2d(1, 1, 5, backend=be).forward(be.randn((1, 1, 3, 3)))
    with pytest.raises(TypeError, match="float32 weights but got a float64 input"):
        conv.forward(np.zeros((2, 3, 8, 8)))
    with pytest.raises(ValueError, match=r"output_padding must be in \[0, stride=2\)"):
        ConvTranspose2d(1, 1, 4, 2, 1, output_padding=2, backend=be)
    with pytest.raises(ValueError, match="kernel_size must be an int >= 1"):
        Conv2d(1, 1, (3, 3), backend=be)
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        ConvTranspose2d(1, 1, 3, backend=be, init="xavier")
    with pytest.raises(ValueError, match="cannot reshape an input of shape"):
        Reshape((1, 28, 28)).forward(be.randn((2, 780)))
    with pytest.raises(RuntimeError, match="without a matching forward"):
        conv.backward(be.randn((2, 8, 4, 4)))
