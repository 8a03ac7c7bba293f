"""Symbolic reasoning: what the evidence implies, and which experiment to run next.

Two layers:

- :class:`Knowledge` is the agent's lab notebook: every measurement, the reachability facts the
  interventions established (``reach[i, j]`` 1 = j is a descendant of i, 0 = it is not, -1 =
  unknown), closed under three sound rules (transitivity; acyclicity; "i reaches j but not k, so j
  cannot reach k"), and the regression evidence on direct edges (see :mod:`evidence`).
- :class:`HypothesisSpace` hands the same facts to the z3 SMT solver, whose models are exactly the
  signed DAGs consistent with the evidence. Its *backbone* (the facts true in every model) says
  what is settled; each open fact is a yes/no question that splits the remaining hypotheses in two.
  The next experiment is the one whose outcome settles the most open facts. The solver also checks
  literature hypotheses: a claim with no consistent model is rejected by the evidence.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import z3

from level5_discovery.evidence import (
    EdgeEvidence,
    InterventionEffect,
    regress_parents,
    test_descendants,
)
from level5_discovery.structure import (
    MAX_EXACT_GENES,
    EdgePrior,
    LiteratureReliability,
    guess_and_confidence,
)
from level5_discovery.world import Measurement

UNKNOWN, NO, YES = -1, 0, 1


@dataclass(frozen=True)
class Z3Budget:
    """Thinking time of the solver, in z3 resource units (``rlimit``: deterministic, unlike
    seconds, so the same seed gives the same designs on a fast or a loaded machine).

    ``check_rlimit`` bounds one satisfiability check, ``decision_rlimit`` all the checks of one
    decision (a backbone, or making the evidence consistent); ``wall_seconds`` is a safety net
    per check that only a pathological instance on a very slow machine reaches.
    """

    check_rlimit: int = 1_000_000
    decision_rlimit: int = 3_000_000
    wall_seconds: float = 60.0


# How often a budget ran out, by kind ("rlimit": deterministic; "wall": the safety net fired,
# so that run may not reproduce exactly). The benchmark reads and resets it.
BUDGET_EVENTS: dict[str, int] = {"rlimit": 0, "wall": 0}


class _Meter:
    """Spends one decision's rlimit budget over successive checks of a solver."""

    def __init__(self, solver: z3.Solver, budget: Z3Budget) -> None:
        self.solver = solver
        self.budget = budget
        self.spent = 0
        self.exhausted = False

    @staticmethod
    def _count(solver: z3.Solver) -> int:
        try:
            return int(solver.statistics().get_key_value("rlimit count"))
        except z3.Z3Exception:  # no check has run on this solver yet
            return 0

    def check(self, *assumptions: z3.BoolRef) -> z3.CheckSatResult:
        """``solver.check`` within what is left of the budget; ``unknown`` when it runs out."""
        left = self.budget.decision_rlimit - self.spent
        if left <= 0:
            self.exhausted = True
            return z3.unknown
        self.solver.set("rlimit", min(self.budget.check_rlimit, left))
        self.solver.set("timeout", int(self.budget.wall_seconds * 1000))
        before = self._count(self.solver)
        start = time.perf_counter()
        result = self.solver.check(*assumptions)
        self.spent += max(self._count(self.solver) - before, 0)
        if result == z3.unknown:
            wall = time.perf_counter() - start >= 0.95 * self.budget.wall_seconds
            BUDGET_EVENTS["wall" if wall else "rlimit"] += 1
            if self.spent >= self.budget.decision_rlimit:
                self.exhausted = True
        return result


def propagate_reachability(reach: np.ndarray) -> np.ndarray:
    """Close a partial reachability matrix under sound rules, to a fixpoint.

    Rules (i, j, k distinct): transitivity ``i→j, j→k ⇒ i→k``; acyclicity ``i→j ⇒ not j→i``;
    ``i→j, not i→k ⇒ not j→k``; ``j→k, not i→k ⇒ not i→j``. Positive facts win a conflict
    (a missed weak effect is likelier than a false detection at our significance level).
    """
    reach = reach.copy()
    n = reach.shape[0]
    np.fill_diagonal(reach, NO)
    for _ in range(n + 2):
        yes = reach == YES
        no = reach == NO
        yes_i = yes.astype(int)
        new_yes = yes | ((yes_i @ yes_i) > 0)
        new_no = no | new_yes.T
        # not j→k if some i has i→j and not i→k
        new_no |= (new_yes.T.astype(int) @ no.astype(int)) > 0
        # not i→j if some k has j→k and not i→k
        new_no |= (no.astype(int) @ new_yes.T.astype(int)) > 0
        new_no &= ~new_yes
        updated = np.full_like(reach, UNKNOWN)
        updated[new_no] = NO
        updated[new_yes] = YES
        np.fill_diagonal(updated, NO)
        if np.array_equal(updated, reach):
            break
        reach = updated
    return reach


@dataclass
class Knowledge:
    """Everything the agent has learned from the lab so far."""

    n_genes: int
    measurements: list[Measurement] = field(default_factory=list)
    effects: dict[int, InterventionEffect] = field(default_factory=dict)
    reach: np.ndarray = field(init=False)
    edges: EdgeEvidence | None = None
    experiments: int = 0
    budget: Z3Budget = field(default_factory=Z3Budget)
    # Weigh the literature by its reliability measured on this notebook's decided pairs
    # (:class:`~level5_discovery.structure.LiteratureReliability`); False: the fixed
    # development-world rates. ``reliability_strength``: the prior belief's weight, in pairs.
    adaptive_prior: bool = True
    reliability_strength: float = 6.0
    # Networks drawn from the posterior to state the best guess's confidence (0: not stated).
    posterior_samples: int = 0
    target_f1: float = 0.9
    # Derived from the facts, so refresh() clears them: the best guess (per prior) and z3's view.
    _guess: tuple | None = field(default=None, init=False, repr=False)
    _space: HypothesisSpace | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.reach = np.full((self.n_genes, self.n_genes), UNKNOWN, dtype=int)
        np.fill_diagonal(self.reach, NO)

    @property
    def control(self) -> np.ndarray:
        """All control replicates pooled."""
        rows = [m.values for m in self.measurements if m.intervention.is_control]
        if not rows:
            raise ValueError("no control experiment yet: run one before any intervention")
        return np.vstack(rows)

    @property
    def tested(self) -> np.ndarray:
        """Bool per gene: has it been intervened on (alone)."""
        out = np.zeros(self.n_genes, dtype=bool)
        out[list(self.effects)] = True
        return out

    @property
    def decided_edges(self) -> np.ndarray:
        """Bool ``[i, k]``: the data decide whether i→k exists (i proved not to reach k, or
        regression decided the pair); the diagonal counts as decided."""
        decided = self.reach == NO
        if self.edges is not None:
            decided = decided | self.edges.determined
        np.fill_diagonal(decided, True)
        return decided

    def add(self, measurement: Measurement) -> None:
        """Record a measurement and update reachability and edge evidence."""
        self.measurements.append(measurement)
        targets = measurement.intervention.targets
        if len(targets) == 1:
            self.experiments += 1
            treated = [
                m for m in self.measurements
                if m.intervention.targets == targets and m.intervention.kind
                == measurement.intervention.kind
            ]  # fmt: skip
            pooled = Measurement(
                measurement.intervention,
                np.vstack([m.values for m in treated]),
                measurement.clamped_value,
                0.0,
            )
            effect = test_descendants(self.control, pooled)
            self.effects[targets[0]] = effect
        elif targets:
            self.experiments += 1
        self.refresh()

    def refresh(self) -> None:
        """Recompute reachability closure and regression evidence from all facts."""
        self._guess = self._space = None
        reach = np.full((self.n_genes, self.n_genes), UNKNOWN, dtype=int)
        for target, effect in self.effects.items():
            reach[target] = np.where(effect.changed, YES, NO)
        reach = propagate_reachability(reach)
        if len(self.measurements) > 0:
            # Regressing x_k on a set S is exact only if S holds every parent of k and no
            # descendant. So regress only genes k whose descendant row is fully known, on all
            # their non-descendants (which then include every parent).
            complete = ~(reach == UNKNOWN).any(axis=1)
            non_descendant = (reach == NO).T & complete[None, :]  # [i, k]
            self.edges = regress_parents(self.measurements, non_descendant)
            # A regression-detected parent is an ancestor too.
            found = self.edges.signed != 0
            if (found & (reach != YES)).any():
                reach[found] = YES
                reach = propagate_reachability(reach)
        self.reach = reach

    def estimate(self, prior: np.ndarray | None = None, prior_threshold: float = 0.3) -> np.ndarray:
        """Current best signed adjacency: the maximum-score DAG (:mod:`structure`).

        All measurements score every candidate network; the literature prior (signed
        confidence in [-1, 1]) enters as prior edge odds, weighed by the literature's measured
        reliability (:meth:`reliability`). Networks above ``structure.MAX_EXACT_GENES`` genes
        fall back to :meth:`sound_estimate`. Cached per prior until the next measurement.
        """
        return self._guess_for(prior, prior_threshold)[0].copy()

    def confidence(self, prior: np.ndarray | None = None, prior_threshold: float = 0.3) -> float:
        """Posterior probability that the best guess has edge F1 >= ``target_f1`` (drawn
        networks, :func:`~level5_discovery.structure.sample_posterior`); 0.0 where it cannot be
        computed (``posterior_samples`` is 0, or above the exact search's size)."""
        value = self._guess_for(prior, prior_threshold)[1]
        return 0.0 if value is None else value

    def reliability(
        self, prior: np.ndarray | None, prior_threshold: float = 0.3
    ) -> LiteratureReliability:
        """The literature's reliability given the pairs the data decide so far."""
        start = LiteratureReliability.start(self.reliability_strength)
        if prior is None:
            return start
        decided = self.decided_edges.copy()
        np.fill_diagonal(decided, False)
        edge = np.zeros((self.n_genes, self.n_genes), dtype=int)
        if self.edges is not None:
            edge = np.where(self.edges.determined, self.edges.signed, 0)
        edge[self.reach == NO] = 0
        return start.update(np.abs(prior) >= prior_threshold, decided, edge, prior)

    def _guess_for(
        self, prior: np.ndarray | None, prior_threshold: float
    ) -> tuple[np.ndarray, float | None]:
        key = (None if prior is None else prior.tobytes(), prior_threshold)
        if self._guess is not None and self._guess[0] == key:
            return self._guess[1]
        edge_prior = (self.reliability(prior, prior_threshold).edge_prior()
                      if self.adaptive_prior and prior is not None else EdgePrior())  # fmt: skip
        if self.n_genes <= MAX_EXACT_GENES:
            value = guess_and_confidence(self.measurements, self.n_genes, prior, prior_threshold,
                                         edge_prior, self.posterior_samples, self.target_f1)
        else:
            value = (self.sound_estimate(prior, prior_threshold), None)
        self._guess = (key, value)
        return value

    def hypothesis_space(self) -> HypothesisSpace:
        """The z3 space of these facts, made consistent; built once per notebook state (the
        designer, the reviewer's view and the literature check all ask it)."""
        if self._space is None:
            self._space = HypothesisSpace.from_knowledge(self, budget=self.budget)
        return self._space

    def sound_estimate(
        self, prior: np.ndarray | None = None, prior_threshold: float = 0.3
    ) -> np.ndarray:
        """The notebook's own answer: data where the sound rules decide, literature elsewhere.

        Data decide where they can (regression-determined pairs; pairs proved unreachable have
        no edge; edges forced by reachability). Elsewhere the literature prior fills in, plus
        the fewest direct edges that explain descendants no path explains.
        """
        n = self.n_genes
        estimate = np.zeros((n, n), dtype=int)
        determined = np.zeros((n, n), dtype=bool)
        if self.edges is not None:
            estimate = self.edges.signed.copy()
            determined = self.edges.determined.copy()
        determined |= self.reach == NO
        estimate[self.reach == NO] = 0
        implied = self.implied_edges()
        forced = (implied != 0) & ~determined
        estimate[forced] = implied[forced]
        determined |= forced
        if prior is not None:
            fill = ~determined & (np.abs(prior) >= prior_threshold)
            estimate[fill] = np.sign(prior[fill]).astype(int)
            self._explain_descendants(estimate, determined)
        np.fill_diagonal(estimate, 0)
        return estimate

    def implied_edges(self) -> np.ndarray:
        """Direct edges forced by reachability alone (sound).

        If do(i) moved j and no gene k can lie on a path between them (for every k, i cannot
        reach k or k cannot reach j), the only way left for i to reach j is the direct edge,
        and its sign is the sign of the observed total effect.
        """
        n = self.n_genes
        out = np.zeros((n, n), dtype=int)
        maybe = self.reach != NO
        for i, effect in self.effects.items():
            for j in np.flatnonzero(effect.changed):
                if self.reach[i, j] != YES:
                    continue
                via = maybe[i] & maybe[:, j]
                via[[i, j]] = False
                if not via.any():
                    out[i, j] = int(effect.direction[j]) or 1
        return out

    def _explain_descendants(self, estimate: np.ndarray, determined: np.ndarray) -> None:
        """Add the fewest direct edges that explain observed descendants (in place).

        The literature is trusted where it is consistent with the data; a descendant that
        do(i) moved but no path of the current estimate explains gets a direct edge i→j
        with the observed sign (an upstream j first, so it explains the genes below it). It
        is a parsimonious guess, overruled by regression once j's row is known.
        """
        reach_yes = self.reach == YES
        for i, effect in self.effects.items():
            moved = [j for j in np.flatnonzero(effect.changed) if not determined[i, j]]
            moved.sort(key=lambda j: -int(reach_yes[j].sum()))
            for j in moved:
                paths = closure(estimate != 0)
                if not paths[i, j]:
                    estimate[i, j] = int(effect.direction[j]) or 1


def closure(adjacency: np.ndarray) -> np.ndarray:
    """Transitive closure of a Boolean adjacency matrix."""
    reach = adjacency.astype(bool).copy()
    for _ in range(reach.shape[0]):
        step = reach | ((reach.astype(int) @ adjacency.astype(int)) > 0)
        if np.array_equal(step, reach):
            break
        reach = step
    return reach


class BudgetExceeded(RuntimeError):
    """z3 ran out of its thinking budget before it could answer."""


@dataclass(frozen=True)
class Claim:
    """A hypothesis about one edge: ``source activates|inhibits target`` (indices)."""

    source: int
    target: int
    sign: int  # +1 activates, -1 inhibits


class HypothesisSpace:
    """The z3 model of every signed DAG consistent with the evidence.

    Variables per ordered pair (i, j): ``edge`` (i→j exists), ``act`` (the edge activates),
    ``reach`` (j is a descendant of i). ``reach`` is defined as the least fixpoint of
    ``reach[i][j] = edge[i][j] or OR_k (edge[i][k] and reach[k][j])``; with acyclicity on
    (``not reach[i][i]``) the definition has a unique solution, the transitive closure.
    Evidence enters as assertions guarded by tracking literals, so a contradiction can be
    traced to the facts that cause it (an unsat core) and those facts dropped.
    """

    def __init__(
        self, n_genes: int, acyclic: bool = True, budget: Z3Budget | None = None
    ) -> None:
        self.n = n_genes
        self.acyclic = acyclic
        self.budget = budget or Z3Budget()
        # make_consistent could not finish within the budget: the facts may still contradict
        # each other, so the backbone is not computed (designers use the numpy closure).
        self.unresolved = False
        n = n_genes
        # Pure Boolean problems go to the SAT-based finite-domain solver (much faster here).
        self.solver = z3.SolverFor("QF_FD") if acyclic else z3.Solver()
        self.edge = [[z3.Bool(f"e_{i}_{j}") for j in range(n)] for i in range(n)]
        self.act = [[z3.Bool(f"a_{i}_{j}") for j in range(n)] for i in range(n)]
        self.reach = [[z3.Bool(f"r_{i}_{j}") for j in range(n)] for i in range(n)]
        self._tracked: dict[str, tuple[z3.BoolRef, str]] = {}
        self._facts: dict[str, z3.BoolRef] = {}
        self._background: list[z3.BoolRef] = []
        self.dropped: list[str] = []
        add = self._add_background
        for i in range(n):
            add(z3.Not(self.edge[i][i]))
            if acyclic:
                add(z3.Not(self.reach[i][i]))
            for j in range(n):
                via = [z3.And(self.edge[i][k], self.reach[k][j]) for k in range(n) if k != i]
                add(self.reach[i][j] == z3.Or(self.edge[i][j], *via))
        if not acyclic:
            # Without acyclicity the equation above has non-least solutions; forbid them by
            # requiring every reach fact to be supported by a strictly shorter path (ranks).
            rank = [[z3.Int(f"d_{i}_{j}") for j in range(n)] for i in range(n)]
            for i in range(n):
                for j in range(n):
                    add(rank[i][j] >= 1)
                    support = [self.edge[i][j]] + [
                        z3.And(self.edge[i][k], self.reach[k][j], rank[k][j] < rank[i][j])
                        for k in range(n)
                        if k != i
                    ]
                    add(z3.Implies(self.reach[i][j], z3.Or(*support)))

    def _add_background(self, *constraints: z3.BoolRef) -> None:
        """Assert the model's own rules (not evidence); backbone() re-asserts them."""
        self.solver.add(*constraints)
        self._background.extend(constraints)

    def _track(self, name: str, fact: z3.BoolRef, kind: str) -> None:
        literal = z3.Bool(f"track_{name}")
        self.solver.add(z3.Implies(literal, fact))
        self._facts[name] = fact
        self._tracked[name] = (literal, kind)

    def _active(self) -> list[z3.BoolRef]:
        return [lit for name, (lit, _) in self._tracked.items() if name not in self.dropped]

    def add_intervention(self, effect: InterventionEffect) -> None:
        """do(target) moved exactly ``effect.changed``; single-path effects fix the edge sign."""
        g = effect.target
        n = self.n
        for j in range(n):
            if j == g:
                continue
            if effect.changed[j]:
                self._track(f"reach_{g}_{j}", self.reach[g][j], "positive")
                # Sign consistency: if the direct edge is the only path, its sign is the
                # observed sign of the total effect.
                other_paths = [
                    z3.And(self.edge[g][k], self.reach[k][j]) for k in range(n) if k not in (g, j)
                ]
                only_direct = z3.And(self.edge[g][j], z3.Not(z3.Or(*other_paths, False)))
                self._track(
                    f"sign_{g}_{j}",
                    z3.Implies(only_direct, self.act[g][j] == bool(effect.direction[j] > 0)),
                    "positive",
                )
            else:
                self._track(f"noreach_{g}_{j}", z3.Not(self.reach[g][j]), "negative")

    def add_edge_evidence(self, edges: EdgeEvidence) -> None:
        """Regression-determined pairs: edge present (with its sign) or absent."""
        for i, k in zip(*np.nonzero(edges.determined), strict=True):
            sign = edges.signed[i, k]
            if sign == 0:
                self._track(f"noedge_{i}_{k}", z3.Not(self.edge[i][k]), "negative")
            else:
                fact = z3.And(self.edge[i][k], self.act[i][k] == bool(sign > 0))
                self._track(f"edge_{i}_{k}", fact, "positive")

    @classmethod
    def from_knowledge(
        cls, knowledge: Knowledge, acyclic: bool = True, budget: Z3Budget | None = None
    ) -> HypothesisSpace:
        """A space holding all of a notebook's interventions and edge evidence."""
        space = cls(knowledge.n_genes, acyclic=acyclic, budget=budget)
        for effect in knowledge.effects.values():
            space.add_intervention(effect)
        if knowledge.edges is not None:
            space.add_edge_evidence(knowledge.edges)
        space.make_consistent()
        return space

    def make_consistent(self) -> list[str]:
        """Drop facts until the evidence is satisfiable; returns the names dropped.

        A noisy lab can produce contradictory facts (most often a missed weak descendant). The
        unsat core names the facts involved; negative facts in it go first. Bounded by the
        budget: if it runs out, the space is marked ``unresolved`` (see :meth:`backbone`).
        """
        meter = _Meter(self.solver, self.budget)
        while (result := meter.check(*self._active())) == z3.unsat:
            core = {str(c) for c in self.solver.unsat_core()}
            names = [nm for nm, (lit, _) in self._tracked.items() if str(lit) in core]
            negatives = [nm for nm in names if self._tracked[nm][1] == "negative"]
            culprits = negatives[:1] or names[:1]
            if not culprits:
                raise RuntimeError("background constraints are unsatisfiable")
            self.dropped.extend(culprits)
        self.unresolved = result == z3.unknown
        return list(self.dropped)

    def claim_status(self, claim: Claim) -> str:
        """``"impossible"`` (no network consistent with the evidence holds the claimed edge: a
        proof), ``"possible"`` (some network does) or ``"unknown"`` (no proof either way).

        Never rejected without proof: while the evidence is ``unresolved`` (make_consistent ran
        out of budget with facts still in conflict) every claim is unsatisfiable only because
        the facts contradict each other, so every claim answers "unknown"; so does a check that
        runs out of its budget.
        """
        if self.unresolved:
            return "unknown"
        fact = z3.And(self.edge[claim.source][claim.target], self.act[claim.source][claim.target]
                      == bool(claim.sign > 0))  # fmt: skip
        meter = _Meter(self.solver, replace(self.budget, decision_rlimit=self.budget.check_rlimit))
        result = meter.check(*self._active(), fact)
        if result == z3.unsat:
            return "impossible"
        return "possible" if result == z3.sat else "unknown"

    def is_consistent(self, claim: Claim) -> bool:
        """Whether the claim survives: not proved impossible (see :meth:`claim_status`)."""
        return self.claim_status(claim) != "impossible"

    def backbone(
        self, edges: bool = True, known: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Facts settled in every consistent network.

        Returns ``(reach, edge)`` matrices with 1 (true in all models), 0 (false in all) or -1
        (open: both answers remain consistent; with ``edges=False`` the edge matrix is all
        open, unexamined). ``known``: reachability already settled by the sound numpy closure;
        those facts are taken as they are instead of re-proved. Standard backbone search: one
        model, then for each fact try its negation; every model found marks all facts it flips
        as open.

        Bounded by the budget: when it runs out, facts not yet examined stay open (sound:
        "open" only means "not proved"), and :class:`BudgetExceeded` is raised if not even
        one model was found.
        """
        if self.unresolved:
            raise BudgetExceeded("the evidence could not be made consistent within the budget")
        n = self.n
        # A fresh solver with the surviving facts asserted outright: each check then carries
        # a single assumption, which is much faster than re-assuming every tracked fact.
        solver = z3.SolverFor("QF_FD") if self.acyclic else z3.Solver()
        solver.add(*self._background)
        solver.add(*[f for name, f in self._facts.items() if name not in self.dropped])
        meter = _Meter(solver, self.budget)
        first = meter.check()
        if first == z3.unknown:
            raise BudgetExceeded("no model of the evidence within the budget")
        if first != z3.sat:
            raise RuntimeError("evidence is inconsistent; call make_consistent first")
        model = solver.model()
        variables = [(("reach", i, j), self.reach[i][j]) for i in range(n) for j in range(n)
                     if i != j]  # fmt: skip
        if edges:
            variables += [(("edge", i, j), self.edge[i][j]) for i in range(n) for j in range(n)
                          if i != j]  # fmt: skip
        value = {key: z3.is_true(model.eval(var, model_completion=True)) for key, var in variables}
        open_keys: set[tuple[str, int, int]] = set()
        settled: set[tuple[str, int, int]] = set()
        if known is not None:
            for key, _ in variables:
                if key[0] == "reach" and known[key[1], key[2]] != UNKNOWN:
                    value[key] = bool(known[key[1], key[2]] == YES)
                    settled.add(key)
        for key, var in variables:
            if key in open_keys or key in settled:
                continue
            if meter.exhausted:
                open_keys.add(key)
                continue
            flipped = z3.Not(var) if value[key] else var
            outcome = meter.check(flipped)
            if outcome == z3.unknown:
                open_keys.add(key)
            elif outcome == z3.sat:
                other = solver.model()
                for key2, var2 in variables:
                    if key2 in settled:
                        continue
                    if z3.is_true(other.eval(var2, model_completion=True)) != value[key2]:
                        open_keys.add(key2)
        reach = np.full((n, n), NO, dtype=int)
        edge = np.full((n, n), NO if edges else UNKNOWN, dtype=int)
        for key, _ in variables:
            kind, i, j = key
            target = reach if kind == "reach" else edge
            target[i, j] = UNKNOWN if key in open_keys else int(value[key])
        return reach, edge

    def design_scores(
        self, knowledge: Knowledge, candidates: list[int], prior: np.ndarray | None = None
    ) -> dict[int, float]:
        """Split score of do(g) for each candidate: :func:`expected_gain` on the z3 backbone
        (on the numpy closure alone if z3 finds no model within the budget)."""
        try:
            reach, _ = self.backbone(edges=False, known=knowledge.reach)
        except BudgetExceeded:
            reach = knowledge.reach
        return {g: expected_gain(knowledge, reach, g, prior) for g in candidates}


def decided_pairs(reach: np.ndarray) -> np.ndarray:
    """Edge questions (i→k) the data can settle given this reachability: i cannot reach k, or
    k's descendant row is complete (so k can be regressed on all its non-descendants)."""
    complete = ~(reach == UNKNOWN).any(axis=1)
    decided = (reach == NO) | complete[None, :]
    np.fill_diagonal(decided, True)
    return decided


def expected_gain(
    knowledge: Knowledge,
    reach: np.ndarray,
    gene: int,
    prior: np.ndarray | None = None,
    prior_threshold: float = 0.3,
    samples: int = 8,
) -> float:
    """Expected number of open edge questions that do(gene) would settle (Monte Carlo).

    do(g) reveals g's descendant row. We draw ``samples`` plausible rows (settled entries as
    they are, open entries with a guessed probability), close each under the reachability rules,
    and count the edge questions (i→k) that become decided, each weighted by the chance that
    the edge exists — so an experiment is worth more when it settles likely edges. Without a
    prior the chances are flat guesses; a literature ``prior`` (its edges and their transitive
    closure) sharpens them. The draws use a fixed seed, so the score is deterministic.
    """
    n = knowledge.n_genes
    if prior is None:
        guess_edge = np.full((n, n), 0.15)
        guess_desc = np.full(n, 0.3)
    else:
        prior_edges = np.abs(prior) >= prior_threshold
        prior_reach = closure(prior_edges)
        guess_edge = np.where(prior_edges, 0.6, 0.1)
        guess_desc = np.where(prior_reach[gene], 0.7, 0.2)
    p_edge = np.where(reach == YES, np.maximum(guess_edge, 0.5),
                      np.where(reach == NO, 0.0, guess_edge))  # fmt: skip
    before = decided_pairs(reach)
    if knowledge.edges is not None:
        before = before | knowledge.edges.determined
    rng = np.random.default_rng(gene)
    open_row = reach[gene] == UNKNOWN
    open_row[gene] = False
    total = 0.0
    for _ in range(samples):
        hypothetical = reach.copy()
        draw = rng.random(n) < guess_desc
        hypothetical[gene, open_row] = np.where(draw[open_row], YES, NO)
        after = decided_pairs(propagate_reachability(hypothetical))
        total += float((p_edge * (after & ~before)).sum())
    return total / samples
