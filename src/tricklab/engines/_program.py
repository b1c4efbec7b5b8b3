"""The population's compiled program: one epoch of every member, and the vectorised test pass.

``epoch(states, active, data, batches)`` scans each cohort's vmapped Keras ``train_step`` over the
epoch's full batches, takes the short last batch as ``fit`` does, freezes stopped members, then
runs the vmapped ``test_step`` over the validation batches. A member with class weights trains
on batches ``(x, y, sample_weight)``, its class's weight per row, as ``fit(class_weight=...)``
builds them; validation and test batches are never weighted, as in ``fit`` and ``evaluate``.
``evaluate(weights, data)`` gives the test loss and metrics (Keras ``evaluate`` semantics) and
the predictions of every member, one batch at a time (a convolutional model's activations for a
whole test set at once would take gigabytes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tricklab.base.quiet import concerning


def compile_programs(cohorts: Sequence[Any], batch_size: int) -> tuple[Any, Any]:
    """``epoch(states, active, data, batches)`` and ``evaluate(weights, data)``, jitted."""
    import jax
    import jax.numpy as jnp
    from keras import StatelessScope

    def features(pool: Any, mean: Any, std: Any, rows: Any) -> Any:
        x = pool[rows]
        if mean is not None:  # the member's own standardisation, on its own rows
            x = (x - mean) / std
        return x

    def inputs(pool: Any, y: Any, mean: Any, std: Any, rows: Any) -> tuple[Any, Any]:
        return features(pool, mean, std, rows), y[rows]

    def metrics_result(model: Any, metrics: list[Any]) -> dict[str, Any]:
        mapping = list(zip(model.metrics_variables, metrics, strict=True))
        with StatelessScope(state_mapping=mapping):
            result: dict[str, Any] = model.get_metrics_result()
            return result

    def member_train_step(model: Any, runs: list[Any], y_axis: int | None) -> Any:
        def step(
            state: Any, pool: Any, y: Any, mean: Any, std: Any, rows: Any, weights: Any, labels: Any
        ) -> Any:
            batch: tuple[Any, ...] = inputs(pool, y, mean, std, rows)
            if weights is not None:  # fit's class_weight: a row's sample weight is its class's
                batch = (*batch, weights[labels[rows]])
            with concerning(runs):  # what Keras warns about while tracing names the cohort
                _, state = model.train_step(state, batch)
            return state

        return jax.vmap(step, in_axes=(0, None, y_axis, 0, 0, 0, 0, None))

    def member_test_step(model: Any, runs: list[Any], y_axis: int | None) -> Any:
        def step(state: Any, pool: Any, y: Any, mean: Any, std: Any, rows: Any) -> Any:
            with concerning(runs):
                _, state = model.test_step(state, inputs(pool, y, mean, std, rows))
            return state

        return jax.vmap(step, in_axes=(0, None, y_axis, 0, 0, 0))

    val_from_test = [c.members[0].task.splits.validation_is_test for c in cohorts]
    runs = [[m.task.plan for m in c.members] for c in cohorts]
    # a member's own targets (its own target scale) are (members, rows, ...): mapped, not shared
    y_axes = [0 if c.y_per_member else None for c in cohorts]
    train_steps = [
        member_train_step(c.model, r, a) for c, r, a in zip(cohorts, runs, y_axes, strict=True)
    ]
    test_steps = [
        member_test_step(c.model, r, a) for c, r, a in zip(cohorts, runs, y_axes, strict=True)
    ]

    def scan_steps(
        step: Any, state: Any, pool: Any, y: Any, c: Any, batches: Any, *weighting: Any
    ) -> Any:
        """Full batches through ``lax.scan``, then the short last batch, like fit.
        ``weighting``: the training steps' per-member class weights and the pool's labels."""
        full, tail = batches
        if full.shape[1]:
            state, _ = jax.lax.scan(
                lambda s, rows: (step(s, pool, y, c["mean"], c["std"], rows, *weighting), None),
                state,
                jnp.swapaxes(full, 0, 1),
            )
        if tail.shape[1]:
            state = step(state, pool, y, c["mean"], c["std"], tail, *weighting)
        return state

    def evaluate_cohort(i: int, tv: Any, ntv: Any, pool: Any, y: Any, c: Any, rows: Any) -> Any:
        cohort = cohorts[i]
        k = rows.shape[0]
        metrics = [jnp.broadcast_to(v, (k, *v.shape)) for v in cohort.init_metrics]
        state = scan_steps(test_steps[i], (tv, ntv, metrics), pool, y, c, batched(rows, batch_size))
        logs = jax.vmap(lambda m, model=cohort.model: metrics_result(model, m))(state[2])
        return logs

    def epoch(states: Any, active: Any, data: Any, batches: Any) -> Any:
        out_states, train_logs, val_logs = [], [], []
        pool, test_pool = data["pool"], data["test_pool"]
        for i, cohort in enumerate(cohorts):
            c = data["cohorts"][i]
            tv, ntv, ov, _ = states[i]
            k = active[i].shape[0]
            mv = [jnp.broadcast_to(v, (k, *v.shape)) for v in cohort.init_metrics]
            weighting = (c["class_weights"], c["labels"])  # validation is never weighted
            new = scan_steps(
                train_steps[i], (tv, ntv, ov, mv), pool, c["y"], c, batches[i], *weighting
            )
            train_logs.append(
                jax.vmap(lambda m, model=cohort.model: metrics_result(model, m))(new[3])
            )
            # A stopped (or diverged) member keeps the state it stopped with.
            keep = active[i]
            new = jax.tree.map(
                lambda n, o, keep=keep: jnp.where(keep.reshape((-1,) + (1,) * (n.ndim - 1)), n, o),
                new,
                states[i],
            )
            out_states.append(new)
            val_pool, val_y = (test_pool, c["y_test"]) if val_from_test[i] else (pool, c["y"])
            val_logs.append(evaluate_cohort(i, new[0], new[1], val_pool, val_y, c, c["val_rows"]))
        return out_states, train_logs, val_logs

    def predict_batches(
        predict_members: Any, tv: Any, ntv: Any, mean: Any, std: Any, rows: Any
    ) -> Any:
        """Every member's outputs on its rows, one batch of rows at a time (as ``predict``):
        a convolutional model's activations for a whole test set would not fit in memory."""
        full, tail = batched(rows, batch_size)
        parts = []
        if full.shape[1]:
            _, out = jax.lax.scan(
                lambda carry, r: (carry, predict_members(tv, ntv, mean, std, r)),
                None,
                jnp.swapaxes(full, 0, 1),
            )  # (steps, members, batch, ...)
            out = jnp.swapaxes(out, 0, 1)
            parts.append(out.reshape(out.shape[0], -1, *out.shape[3:]))
        if tail.shape[1]:
            parts.append(predict_members(tv, ntv, mean, std, tail))
        return jnp.concatenate(parts, axis=1)

    def evaluate(weights: Any, data: Any) -> Any:
        logs, outputs = [], []
        for i, cohort in enumerate(cohorts):
            c = data["cohorts"][i]
            tv, ntv = weights[i]
            pool, y_test = data["test_pool"], c["y_test"]
            logs.append(evaluate_cohort(i, tv, ntv, pool, y_test, c, c["test_rows"]))

            def predict(tv: Any, ntv: Any, mean: Any, std: Any, rows: Any, **bound: Any) -> Any:
                x = features(bound["pool"], mean, std, rows)
                y_pred, _ = bound["model"].stateless_call(tv, ntv, x, training=False)
                return y_pred

            bound = {"pool": pool, "model": cohort.model}
            predict_members: Callable[..., Any] = jax.vmap(
                lambda *a, bound=bound: predict(*a, **bound)
            )
            outputs.append(
                predict_batches(predict_members, tv, ntv, c["mean"], c["std"], c["test_rows"])
            )
        return logs, outputs

    return jax.jit(epoch, donate_argnums=(0,)), jax.jit(evaluate)


def batched(rows: Any, batch_size: int) -> tuple[Any, Any]:
    """``(members, n)`` rows -> full batches ``(members, steps, batch)`` and the short tail."""
    k, n = rows.shape
    full = (n // batch_size) * batch_size
    return rows[:, :full].reshape(k, n // batch_size, batch_size), rows[:, full:]
