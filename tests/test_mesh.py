"""The softmax family on a class-sharded mesh (8 forced CPU devices, in a subprocess so
that the rest of the suite keeps one device): under plain ``jit`` with ``Auto`` and
``Explicit`` (``jax.set_mesh``) axis types, logits split ``P("data", "model")``, values
and gradients equal the unsharded call's, and every collective in the compiled step is
O(examples): nothing of the logits' size crosses devices."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import functools, json, os, re, sys
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    import jaxloss

    n, c = 64, 1000  # 1000 classes: 250 per model shard
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c)).astype(np.float32)
    y = rng.integers(0, c, n).astype(np.int32)
    t = np.asarray(jax.nn.softmax(rng.standard_normal((n, c)).astype(np.float32)))
    w = rng.uniform(0.5, 2, c).astype(np.float32)
    keep = rng.random(n) < 0.8
    cases = {
        "sparse": lambda x, y, t: jaxloss.sparse_categorical_cross_entropy(
            x, y, reduction="mean", label_smoothing=0.1, z_loss=1e-3, ignore_index=3,
            class_weights=w, where=keep),
        "categorical": lambda x, y, t: jaxloss.categorical_cross_entropy(
            x, t, reduction="mean", class_weights=w, label_smoothing=0.1),
        "kl": lambda x, y, t: jaxloss.kl_divergence(x, t, reduction="mean"),
        "kl_with_logits": lambda x, y, t: jaxloss.kl_divergence_with_logits(
            x, jnp.log(t), temperature=2.0, reduction="mean"),
        "entropy": lambda x, y, t: jaxloss.entropy(x, reduction="mean"),
        "focal": lambda x, y, t: jaxloss.softmax_focal_loss(x, y, alpha=w, reduction="mean"),
        "reverse_kl": lambda x, y, t: jaxloss.reverse_kl_divergence(x, t, reduction="mean"),
        "js": lambda x, y, t: jaxloss.js_divergence(x, t, reduction="mean"),
        "categorical_focal": lambda x, y, t: jaxloss.categorical_focal_loss(
            x, t, alpha=w, label_smoothing=0.1, reduction="mean"),
    }

    def collectives(hlo):
        out = []
        for line in hlo.splitlines():
            m = re.search(r"= (.*?) (all-reduce|all-gather|reduce-scatter|all-to-all|"
                          r"collective-permute)(-start)?\\(", line)
            if m:
                shapes = re.findall(r"\\w+\\[([\\d,]*)\\]", m.group(1))
                out.append(sum(int(np.prod([int(d) for d in s.split(",") if d] or [1]))
                               for s in shapes))
        return out

    report = {}
    refs = {name: jax.jit(jax.value_and_grad(f))(x, y, t) for name, f in cases.items()}
    for kind in ("auto", "explicit"):
        axis_type = AxisType.Auto if kind == "auto" else AxisType.Explicit
        mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(axis_type,) * 2)
        with jax.set_mesh(mesh):
            xs = jax.device_put(x, NamedSharding(mesh, P("data", "model")))
            ts = jax.device_put(t, NamedSharding(mesh, P("data", "model")))
            ys = jax.device_put(y, NamedSharding(mesh, P("data")))
            for name, f in cases.items():
                try:
                    step = jax.jit(jax.value_and_grad(f)).lower(xs, ys, ts).compile()
                    v, g = step(xs, ys, ts)
                    v0, g0 = refs[name]
                    err = float(abs(v - v0)), float(np.max(np.abs(np.asarray(g) - g0)))
                    sizes = collectives(step.as_text())
                    report[f"{kind}/{name}"] = {"err": err, "sizes": sizes}
                except Exception as e:
                    report[f"{kind}/{name}"] = {"error": f"{type(e).__name__}: {e}"[:400]}

    # shard_map with axis_name: the class axis split over "model" (2 x 4 and flat 8)
    y2 = y.copy()
    y2[5] = -100
    for shape, names in (((2, 4), ("data", "model")), ((8,), ("model",))):
        mesh = jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(shape))
        data = "data" if "data" in names else None
        for sparse in (True, False):
            fn = (jaxloss.sparse_categorical_cross_entropy if sparse
                  else jaxloss.categorical_cross_entropy)
            tgt = y2 if sparse else t
            opts = dict(label_smoothing=0.1, z_loss=1e-3)
            if sparse:
                opts["ignore_index"] = -100
            row = P(data)
            specs = (P(data, "model"), row if sparse else P(data, "model"), P("model"), row)

            def local(x, tgt, w, keep, reduction):
                out = fn(x, tgt, class_weights=w, where=keep, axis_name="model",
                         reduction=reduction, **opts)
                return out if reduction == "none" or data is None else jax.lax.psum(out, data)

            def total(x, tgt, w):
                return jax.shard_map(functools.partial(local, reduction="sum"), mesh=mesh,
                                     in_specs=specs, out_specs=P())(x, tgt, w, keep)

            def ref(x, tgt, w):
                return fn(x, tgt, class_weights=w, where=keep, reduction="sum", **opts)

            key = f"shard_map{shape}/{'sparse' if sparse else 'categorical'}"
            try:
                errs = []
                dx = jnp.asarray(rng.standard_normal(x.shape).astype(np.float32))

                # value, both gradients, and along dx the value's jvp and a
                # Hessian-vector product, in one program (forward over reverse)
                def program(loss_fn, x, tgt, w):
                    vg = lambda x: jax.value_and_grad(loss_fn, (0, 2))(x, tgt, w)
                    return jax.jvp(vg, (x,), (dx,))

                (v, g), (tan, hvp) = jax.jit(functools.partial(program, total))(x, tgt, w)
                (v0, g0), (tan0, hvp0) = jax.jit(functools.partial(program, ref))(x, tgt, w)
                errs += [abs(float(v - v0)) / abs(float(v0)),
                         float(np.max(np.abs(g[0] - g0[0]))), float(np.max(np.abs(g[1] - g0[1])))]
                # per-example values, and the z-loss term for logging (return_z_loss)
                both = jax.shard_map(
                    lambda x, tgt, w, keep: fn(x, tgt, class_weights=w, where=keep,
                                               axis_name="model", return_z_loss=True,
                                               **opts),
                    mesh=mesh, in_specs=specs, out_specs=(row, row))
                values, z = jax.jit(both)(x, tgt, w, keep)
                values0, z0 = jax.jit(lambda x, tgt, w: fn(
                    x, tgt, class_weights=w, where=keep, return_z_loss=True, **opts))(x, tgt, w)
                errs.append(float(np.max(np.abs(values - values0))))
                errs.append(abs(float(tan - tan0)))
                errs.append(float(np.max(np.abs(hvp[0] - hvp0[0]))))
                errs.append(float(np.max(np.abs(z - z0))))
                # vmap of per-example gradients, inside shard_map
                def one(xr, tr, kr, w, axis_name=None):
                    return fn(xr[None], tr[None], class_weights=w, where=kr[None],
                              axis_name=axis_name, reduction="sum", **opts)

                grads = jax.shard_map(
                    lambda x, tgt, w, keep: jax.vmap(jax.grad(one), (0, 0, 0, None, None))(
                        x, tgt, keep, w, "model"),
                    mesh=mesh, in_specs=specs, out_specs=P(data, "model"))
                g_rows = jax.jit(grads)(x, tgt, w, keep)
                g_rows0 = jax.jit(jax.vmap(jax.grad(one), (0, 0, 0, None)))(x, tgt, keep, w)
                errs.append(float(np.max(np.abs(g_rows - g_rows0))))
                sizes = collectives(jax.jit(jax.grad(total)).lower(x, tgt, w).compile().as_text())
                report[key] = {"errs": errs, "sizes": sizes}
            except Exception as e:
                report[key] = {"error": f"{type(e).__name__}: {e}"[:600]}
    # The rest of the softmax family with axis_name on a 2 x 4 mesh: a -inf logit whose
    # class has no target mass, a masked row of NaN logits, where and sample weights.
    # Value, gradients of both arguments, a jvp and a Hessian-vector product.
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    xk = x.copy()
    xk[2, 5] = -np.inf
    xk[4] = np.nan
    keep_k = keep.copy()
    keep_k[4] = False
    tk = t.copy()
    tk[2] = 0.0
    tk[2, 0] = 1.0
    yk = y.copy()
    yk[7] = -100
    swk = rng.uniform(0.5, 2, n).astype(np.float32)
    dxk = rng.standard_normal(x.shape).astype(np.float32)
    dxk[2, 5] = 0.0

    def diff(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if not (np.array_equal(np.isnan(a), np.isnan(b))
                and np.array_equal(np.isinf(a), np.isinf(b))):
            return float("inf")
        fin = np.isfinite(b)
        return float(np.max(np.abs(a[fin] - b[fin]) / (1 + np.abs(b[fin])), initial=0))

    family = {  # name: (loss(x, other, w, **kw), other, class-split other?, class weights?)
        "kl": (lambda x, o, w, **kw: jaxloss.kl_divergence(x, o, **kw), tk, True, False),
        "reverse_kl": (lambda x, o, w, **kw: jaxloss.reverse_kl_divergence(x, o, **kw),
                       t, True, False),
        "kl_with_logits": (lambda x, o, w, **kw: jaxloss.kl_divergence_with_logits(
            x, o, temperature=2.0, **kw), np.log(tk), True, False),
        "js": (lambda x, o, w, **kw: jaxloss.js_divergence(x, o, **kw), tk, True, False),
        "entropy": (lambda x, o, w, **kw: jaxloss.entropy(x, **kw), None, False, False),
        "softmax_focal": (lambda x, o, w, **kw: jaxloss.softmax_focal_loss(
            x, o, alpha=w, ignore_index=-100, **kw), yk, False, True),
        "softmax_focal_smoothed": (lambda x, o, w, **kw: jaxloss.softmax_focal_loss(
            x, o, alpha=w, gamma=1.5, label_smoothing=0.1, ignore_index=-100, **kw),
            yk, False, True),
        "categorical_focal": (lambda x, o, w, **kw: jaxloss.categorical_focal_loss(
            x, o, alpha=w, label_smoothing=0.1, **kw), tk, True, True),
    }
    for name, (loss, other, split, weighted) in family.items():
        o_spec = P("data", "model") if split else P("data")
        w_arg = w if weighted else None

        def local(x, o, cw, keep, sw, reduction, loss=loss):
            out = loss(x, o, cw, where=keep, sample_weight=sw, axis_name="model",
                       reduction=reduction)
            return out if reduction == "none" else jax.lax.psum(out, "data")

        def sharded(reduction, o_spec=o_spec):
            return jax.shard_map(
                functools.partial(local, reduction=reduction), mesh=mesh,
                in_specs=(P("data", "model"), o_spec, P("model"), P("data"), P("data")),
                out_specs=P("data") if reduction == "none" else P())

        def ref(x, o, cw, reduction="sum", loss=loss):
            return loss(x, o, cw, where=keep_k, sample_weight=swk, reduction=reduction)

        args = (xk, other, w_arg)
        per_example = lambda x, o, cw, f=sharded("none"): f(x, o, cw, keep_k, swk)
        key = f"family/{name}"
        try:
            argnums = (0, 1) if split else (0,)

            # per-example values; their sum's value and gradients; and along dx its jvp
            # and a Hessian-vector product: one program (forward over reverse)
            def program(loss_fn, x, o, cw, dx, argnums=argnums):
                def summed(x, o, cw):
                    values = loss_fn(x, o, cw)
                    return jnp.sum(values), values

                vg = lambda x: jax.value_and_grad(summed, argnums, has_aux=True)(x, o, cw)
                return jax.jvp(vg, (x,), (dx,))

            compiled = jax.jit(functools.partial(program, per_example)).lower(*args, dxk)
            ((v, values), g), ((dv, _), dg) = compiled.compile()(*args, dxk)
            ref_none = functools.partial(ref, reduction="none")
            ((v0, values0), g0), ((dv0, _), dg0) = jax.jit(functools.partial(program, ref_none))(
                *args, dxk)
            errs = [diff(v, v0)] + [diff(a, b) for a, b in zip(g, g0)]
            errs += [diff(dv, dv0), diff(dg[0], dg0[0]), diff(values, values0)]
            # the collectives of reverse mode alone
            total = lambda x, o, cw: jnp.sum(per_example(x, o, cw))
            hlo = jax.jit(jax.grad(total, argnums)).lower(*args).compile().as_text()
            if weighted:  # the weighted mean's denominator, sum_i alpha_y_i s_i: each
                # "data" shard's mean of its own rows, summed over "data"
                means = jax.jit(sharded("mean"))(*args, keep_k, swk)
                halves = [slice(0, n // 2), slice(n // 2, n)]
                means0 = sum(loss(xk[r], None if other is None else other[r], w_arg,
                                  where=keep_k[r], sample_weight=swk[r], reduction="mean")
                             for r in halves)
                errs.append(diff(means, means0))
            report[key] = {"errs": errs, "sizes": collectives(hlo)}
        except Exception as e:
            report[key] = {"error": f"{type(e).__name__}: {e}"[:600]}

    # linear_cross_entropy with axis_name: the head's weight split [D, C/k] over "model"
    nl, d, cl = 16, 5, 88  # 22 or 11 classes per shard, blocks of 4 that do not divide them
    h = rng.standard_normal((nl, d)).astype(np.float32)
    wt = rng.standard_normal((d, cl)).astype(np.float32)
    bias = rng.standard_normal(cl).astype(np.float32)
    cwl = rng.uniform(0.5, 2, cl).astype(np.float32)
    yl = rng.integers(0, cl, nl).astype(np.int32)
    yl[3] = -100
    kl = rng.random(nl) < 0.8
    lopts = dict(label_smoothing=0.1, z_loss=1e-3, ignore_index=-100, logit_softcap=20.0,
                 block_size=4)
    for shape, names in (((2, 4), ("data", "model")), ((8,), ("model",))):
        mesh = jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(shape))
        data = "data" if "data" in names else None
        reductions = ("none", "sum") if data else ("none", "sum", "mean")
        for reduction in reductions:
            def local(h, wt, b, cw, y, keep, reduction=reduction):
                out = jaxloss.linear_cross_entropy(
                    h, wt, y, bias=b, class_weights=cw, where=keep, axis_name="model",
                    reduction=reduction, **lopts)
                if reduction == "none" or data is None:
                    return out
                return jax.lax.psum(out, data)

            row = P(data)
            specs = (P(data, None), P(None, "model"), P("model"), P("model"), row, row)
            f = jax.shard_map(local, mesh=mesh, in_specs=specs,
                              out_specs=row if reduction == "none" else P())

            def total(h, wt, b, cw):
                return jnp.sum(f(h, wt, b, cw, yl, kl))

            def ref(h, wt, b, cw):
                return jnp.sum(jaxloss.linear_cross_entropy(
                    h, wt, yl, bias=b, class_weights=cw, where=kl, reduction=reduction,
                    **lopts))

            key = f"linear{shape}/{reduction}"
            try:
                args = (h, wt, bias, cwl)
                dx = jnp.asarray(rng.standard_normal(h.shape).astype(np.float32))

                # value, four gradients, and along dh the value's jvp and a
                # Hessian-vector product, in one program (forward over reverse)
                def program(loss_fn, h, *rest):
                    vg = lambda h: jax.value_and_grad(loss_fn, (0, 1, 2, 3))(h, *rest)
                    return jax.jvp(vg, (h,), (dx,))

                compiled = jax.jit(functools.partial(program, total)).lower(*args).compile()
                (v, g), (tan, hvp) = compiled(*args)
                (v0, g0), (tan0, hvp0) = jax.jit(functools.partial(program, ref))(*args)
                errs = [abs(float(v - v0)) / abs(float(v0))]
                errs += [float(np.max(np.abs(a - b))) for a, b in zip(g, g0)]
                errs.append(abs(float(tan - tan0)))
                errs.append(float(np.max(np.abs(hvp[0] - hvp0[0]))))
                # the collectives of reverse mode alone (the program above also has the
                # forward-mode ones, which XLA may combine with them)
                hlo = jax.jit(jax.grad(total, (0, 1, 2, 3))).lower(*args).compile().as_text()
                if data is None and reduction == "none":  # vmap of per-token gradients
                    def one(hr, yr, kr, wt, b, cw, axis_name=None):
                        return jaxloss.linear_cross_entropy(
                            hr[None], wt, yr[None], bias=b, class_weights=cw, where=kr[None],
                            axis_name=axis_name, reduction="sum", **lopts)

                    per_token = jax.shard_map(
                        lambda h, y, keep, wt, b, cw: jax.vmap(
                            jax.grad(one, (0, 3)), (0, 0, 0, None, None, None, None))(
                            h, y, keep, wt, b, cw, "model"),
                        mesh=mesh, in_specs=(P(), P(), P(), P(None, "model"), P("model"),
                                             P("model")),
                        out_specs=(P(), P(None, None, "model")))
                    g_tok = jax.jit(per_token)(h, yl, kl, wt, bias, cwl)
                    g_tok0 = jax.jit(jax.vmap(jax.grad(one, (0, 3)), (0, 0, 0, None, None, None)))(
                        h, yl, kl, wt, bias, cwl)
                    errs.append(max(float(np.max(np.abs(a - b))) for a, b in zip(g_tok, g_tok0)))
                local_n = nl // (2 if data else 1)
                local_c = cl // 4 if data else cl // 8
                report[key] = {"errs": errs, "sizes": collectives(hlo),
                               "n": local_n, "d": d, "c": local_c}
            except Exception as e:
                report[key] = {"error": f"{type(e).__name__}: {e}"[:600]}
    # linear_cross_entropy under jax.set_mesh with an Explicit 2 x 4 mesh: the weight's
    # columns typed P(None, "model"), the tokens P("data"); no axis_name needed
    swl = rng.uniform(0.5, 2, nl).astype(np.float32)
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Explicit,) * 2)
    for reduction in ("none", "sum", "mean"):
        def expl(h, wt, b, cw, y, keep, sw, reduction=reduction):
            return jnp.sum(jaxloss.linear_cross_entropy(
                h, wt, y, bias=b, class_weights=cw, where=keep, sample_weight=sw,
                reduction=reduction, **lopts))

        key = f"linear-explicit/{reduction}"
        try:
            host = (h, wt, bias, cwl, yl, kl, swl)
            v0, g0 = jax.jit(jax.value_and_grad(expl, (0, 1, 2, 3)))(*host)
            with jax.set_mesh(mesh):
                put = lambda a, *spec: jax.device_put(a, NamedSharding(mesh, P(*spec)))
                args = (put(h, "data", None), put(wt, None, "model"), put(bias, "model"),
                        put(cwl, "model"), put(yl, "data"), put(kl, "data"), put(swl, "data"))
                v, g = jax.jit(jax.value_and_grad(expl, (0, 1, 2, 3)))(*args)
                hlo = jax.jit(jax.grad(expl, (0, 1, 2, 3))).lower(*args).compile().as_text()
            errs = [abs(float(v - v0)) / abs(float(v0))]
            errs += [float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(g, g0)]
            if reduction == "mean":  # NumPy labels and mask, replicated hidden, z-term
                want = jaxloss.linear_cross_entropy(h, wt, yl, where=kl, reduction="mean",
                                                    return_z_loss=True, **lopts)
                with jax.set_mesh(mesh):
                    got = jax.jit(lambda h, w: jaxloss.linear_cross_entropy(
                        h, w, yl, where=kl, reduction="mean", return_z_loss=True,
                        **lopts))(h, args[1])
                errs.append(max(abs(float(a) - float(b)) for a, b in zip(got, want)))
                # float16 sample weights near their smallest and class weights of 1e-20:
                # the mean rescales them by one power of two on every device
                sw16, tiny = (swl * 1e-7).astype(np.float16), cwl * np.float32(1e-20)
                mean = lambda h, w, cw, sw: jaxloss.linear_cross_entropy(
                    h, w, yl, class_weights=cw, sample_weight=sw, reduction="mean", **lopts)
                want = mean(h, wt, tiny, sw16)
                with jax.set_mesh(mesh):
                    got = jax.jit(mean)(args[0], args[1], put(tiny, "model"), put(sw16, "data"))
                errs.append(abs(float(got) - float(want)) / abs(float(want)))
            report[key] = {"errs": errs, "sizes": collectives(hlo), "n": nl // 2, "d": d,
                           "c": cl // 4}
        except Exception as e:
            report[key] = {"error": f"{type(e).__name__}: {e}"[:600]}
    # an empty batch with the vocabulary split over shard_map: every gradient is 0
    mesh = jax.make_mesh((8,), ("model",), axis_types=(AxisType.Auto,))
    h0, y0 = jnp.zeros((0, d), jnp.float32), jnp.zeros((0,), jnp.int32)
    for reduction in ("sum", "mean"):
        key = f"linear-empty/{reduction}"
        try:
            f = jax.shard_map(
                lambda h, w, reduction=reduction: jaxloss.linear_cross_entropy(
                    h, w, y0, axis_name="model", reduction=reduction),
                mesh=mesh, in_specs=(P(), P(None, "model")), out_specs=P())
            g_h, g_w = jax.grad(f, (0, 1))(h0, wt)
            report[key] = [list(g_h.shape), float(jnp.abs(g_w).max())]
        except Exception as e:
            report[key] = {"error": f"{type(e).__name__}: {e}"[:600]}
    # A NaN target and a target of 1.5 with the classes split, at 2048 classes a shard
    # (XLA:CPU's YNNPACK fusions, which skip NaN in row maxima, run from about 4096
    # elements): the row's value and its whole gradient, in the logits and the targets,
    # are NaN; the other rows equal the unsharded call's.
    try:
        mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
        xn = rng.standard_normal((8, 8192)).astype(np.float32)
        tn = rng.random((8, 8192)).astype(np.float32)
        tn /= tn.sum(1, keepdims=True)
        tn[2, 5], tn[3, 7] = np.nan, 1.5

        def ce_nan(x, t, axis_name=None):
            return jaxloss.categorical_cross_entropy(x, t, axis_name=axis_name)

        sharded_ce = jax.shard_map(
            functools.partial(ce_nan, axis_name="model"), mesh=mesh,
            in_specs=(P(None, "model"), P(None, "model")), out_specs=P())

        def value_grads(f):
            v = f(xn, tn)
            return (v, *jax.grad(lambda x, t: f(x, t).sum(), (0, 1))(xn, tn))

        got = jax.jit(lambda: value_grads(sharded_ce))()
        want = jax.jit(lambda: value_grads(ce_nan))()
        bad = np.zeros(8, bool)
        bad[[2, 3]] = True
        report["nan_at_scale"] = {"errs": [
            float(np.isnan(np.asarray(a)[bad]).mean()) for a in got] + [
            diff(np.asarray(a)[~bad], np.asarray(b)[~bad]) for a, b in zip(got, want)]}
    except Exception as e:
        report["nan_at_scale"] = {"error": f"{type(e).__name__}: {e}"[:600]}
    # Soft targets with a row holding +inf and a row of -inf, the classes split: NaN in
    # the same places as unsharded (value, and every entry of both gradients of the +inf
    # row), the rest equal
    try:
        mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
        xi, ti = x[:8].copy(), t[:8].copy()
        xi[1, 7], xi[2], xi[3, :500] = np.inf, -np.inf, -np.inf
        ti[3, :500] = 0.0

        def ce_inf(x, t, axis_name=None):
            return jaxloss.categorical_cross_entropy(x, t, z_loss=1e-3, axis_name=axis_name)

        sharded_inf = jax.shard_map(
            functools.partial(ce_inf, axis_name="model"), mesh=mesh,
            in_specs=(P("data", "model"), P("data", "model")), out_specs=P("data"))

        def value_grads_inf(f):
            return (f(xi, ti), *jax.grad(lambda x, t: f(x, t).sum(), (0, 1))(xi, ti))

        got = jax.jit(lambda: value_grads_inf(sharded_inf))()
        want = jax.jit(lambda: value_grads_inf(ce_inf))()
        report["inf_rows"] = {"errs": [diff(a, b) for a, b in zip(got, want)],
                              "nan": [bool(np.isnan(np.asarray(a)[1]).all()) for a in got]}
    except Exception as e:
        report["inf_rows"] = {"error": f"{type(e).__name__}: {e}"[:600]}
    print("REPORT" + json.dumps(report))
    """
)


def _report():
    env = dict(
        os.environ,
        # the suite's cheaper compilation (tests/conftest.py) and 8 CPU devices
        XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=8",
        JAX_DISABLE_MOST_OPTIMIZATIONS="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    line = [r for r in done.stdout.splitlines() if r.startswith("REPORT")]
    assert line, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(line[0][len("REPORT") :])


CASES = [
    "sparse",
    "categorical",
    "kl",
    "kl_with_logits",
    "entropy",
    "focal",
    "reverse_kl",
    "js",
    "categorical_focal",
]
FAMILY = [
    "kl",
    "reverse_kl",
    "kl_with_logits",
    "js",
    "entropy",
    "softmax_focal",
    "softmax_focal_smoothed",
    "categorical_focal",
]


def test_class_sharded_meshes():
    """One subprocess (8 devices), every case checked, every failure reported at once."""
    report = _report()
    n, c, model = 64, 1000, 4
    failures = []
    for kind in ("auto", "explicit"):
        for name in CASES:
            r = report[f"{kind}/{name}"]
            if "error" in r:
                failures.append(f"{kind}/{name}: {r['error']}")
                continue
            value_err, grad_err = r["err"]
            # every collective carries a few numbers per example, never a logits shard
            if not (value_err < 1e-5 and grad_err < 1e-6 and r["sizes"]
                    and max(r["sizes"]) <= 8 * n < n * c // model):  # fmt: skip
                failures.append(f"{kind}/{name}: {r}")
    # Inside shard_map with axis_name="model": value, logits and class-weight gradients,
    # per-example values, jvp, a Hessian-vector product and vmap of per-example
    # gradients equal the unsharded call's
    # (class weights, smoothing, z-loss, ignore_index, where), and so does the z-loss
    # term of return_z_loss; O(examples) collectives.
    for mesh in ("(2, 4)", "(8,)"):
        for loss in ("sparse", "categorical"):
            r = report[f"shard_map{mesh}/{loss}"]
            if "error" in r:
                failures.append(f"shard_map{mesh}/{loss}: {r['error']}")
                continue
            rel_value, g_logits, g_weights, per_example, jvp, hvp, z_term, vmap = r["errs"]
            ok = rel_value < 1e-6 and g_logits < 1e-6 and g_weights < 1e-5
            ok = ok and per_example < 1e-5 and jvp < 1e-4 and hvp < 1e-5 and z_term < 1e-6
            ok = ok and vmap < 1e-6
            if not (ok and r["sizes"] and max(r["sizes"]) <= 8 * n):
                failures.append(f"shard_map{mesh}/{loss}: {r}")
    # the rest of the family (divergences, entropy, focal) with axis_name: value,
    # gradients, per-example values, jvp, Hessian-vector product (and the weighted mean)
    # equal the unsharded call's, NaN and inf in the same places; O(examples) collectives
    for name in FAMILY:
        r = report[f"family/{name}"]
        if "error" in r:
            failures.append(f"family/{name}: {r['error']}")
        elif not (max(r["errs"]) < 1e-5 and r["sizes"] and max(r["sizes"]) <= 8 * n):
            failures.append(f"family/{name}: {r}")
    # the bad rows all NaN (value, logits and targets gradients), the others exact
    r = report["nan_at_scale"]
    if "error" in r or r["errs"][:3] != [1.0, 1.0, 1.0] or max(r["errs"][3:]) > 1e-5:
        failures.append(f"nan_at_scale: {r}")
    r = report["inf_rows"]
    if "error" in r or r["nan"] != [True, True, True] or max(r["errs"]) > 1e-5:
        failures.append(f"inf_rows: {r}")
    # linear_cross_entropy with axis_name inside shard_map: value, the gradients of hidden,
    # weight, bias and class weights, jvp and a Hessian-vector product equal the unsharded
    # call's; the collectives carry per-token numbers, dh ([N, D]) and, on the 2 x 4 mesh,
    # the data-parallel sum of the weight, bias and class-weight gradients ([D + 2, C/k]),
    # never a block of logits ([N, C/k]).
    for key in (
        "linear(2, 4)/none",
        "linear(2, 4)/sum",
        "linear(8,)/none",
        "linear(8,)/sum",
        "linear(8,)/mean",
    ):
        r = report[key]
        if "error" in r:
            failures.append(f"{key}: {r['error']}")
            continue
        rel_value, g_h, g_w, g_b, g_cw, jvp, hvp, *vmap = r["errs"]  # vmap: flat, "none"
        ok = rel_value < 1e-6 and max(g_h, g_w, g_b, g_cw) < 1e-5 and jvp < 1e-4 and hvp < 1e-4
        ok = ok and (len(vmap) == (key == "linear(8,)/none")) and max(vmap, default=0) < 1e-5
        n_, d_, c_ = r["n"], r["d"], r["c"]
        bound = max(n_ * d_, (d_ + 2) * c_ + 8, 8 * n_)  # + a few scalars XLA may combine
        if not (ok and r["sizes"] and max(r["sizes"]) <= bound < n_ * c_ + 1):
            failures.append(f"{key}: {r}")
    # ... and the same under an Explicit mesh without axis_name (value and four gradients)
    for key in ("linear-explicit/none", "linear-explicit/sum", "linear-explicit/mean"):
        r = report[key]
        if "error" in r:
            failures.append(f"{key}: {r['error']}")
            continue
        rel_value, *grads = r["errs"]
        n_, d_, c_ = r["n"], r["d"], r["c"]
        bound = max(n_ * d_, (d_ + 2) * c_ + 8, 8 * n_)  # + a few scalars XLA may combine
        ok = rel_value < 1e-6 and max(grads) < 1e-5
        if not (ok and r["sizes"] and max(r["sizes"]) <= bound < n_ * c_ + 1):
            failures.append(f"{key}: {r}")
    for reduction in ("sum", "mean"):
        got = report[f"linear-empty/{reduction}"]
        if got != [[0, report["linear-explicit/sum"]["d"]], 0.0]:
            failures.append(f"linear-empty/{reduction}: {got}")
    assert not failures, "\n".join(failures)
