# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run retrain test format test-slow test-gpu smoke wheel-check tensorboard study study-nk study-trials study-tasks clean

# The venv is rebuilt when the dependency list or the pins change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,export,sweep,ray]'
	touch $(STAMP)

install: $(STAMP)

## Runs a search offline that ends with its pick against random candidates by ground truth: MNIST-1D
## (generated offline), each candidate and its training settings trained on its own, 80 trials 2 at a
## time (about 5 min on 2 cores, its ground truth included). RUN_ARGS= runs the plain default
## (weight sharing on the digits).
RUN_ARGS ?= +task=mnist1d +trials=joint trials.budget=80
run: $(STAMP)
	$(PY) -m rlnas $(RUN_ARGS) $(ARGS)

## Retrains, tests, exports and compresses the newest run's best arch (or ARCH=path/best_arch.json).
ARCH ?= $(shell ls -t outputs/runs/*/*/best_arch.json 2>/dev/null | head -n 1)
retrain: $(STAMP)
	@test -n "$(ARCH)" || { echo "no outputs/runs/*/*/best_arch.json yet: run 'make run' first or pass ARCH=..."; exit 2; }
	$(PY) -m rlnas.retrain "arch=$(ARCH)" compress=all $(ARGS)

## Lints and format-checks the code (ruff, settings in pyproject.toml), then runs the default
## test suite (slow and GPU tests excluded). `make format` applies ruff's fixes and formatting.
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

## The tests that need CUDA (on a machine with a GPU).
test-gpu: $(STAMP)
	$(PY) -m pytest -m gpu $(PYTEST_ARGS)

smoke: $(STAMP)
	$(PY) -m rlnas +experiment=smoke $(ARGS)

## Builds the wheel, installs it into a fresh venv (no checkout on the path) and runs a smoke search from an empty dir.
WHEEL_TMP ?= /tmp/rlnas-wheel-check
wheel-check: $(STAMP)
	rm -rf $(WHEEL_TMP) && mkdir -p $(WHEEL_TMP)/empty
	$(PY) -m pip wheel --quiet --no-deps --wheel-dir $(WHEEL_TMP)/dist .
	$(PYTHON) -m venv $(WHEEL_TMP)/venv
	$(WHEEL_TMP)/venv/bin/python -m pip install --quiet -c constraints.txt $(WHEEL_TMP)/dist/rlnas-*.whl
	cd $(WHEEL_TMP)/empty && $(WHEEL_TMP)/venv/bin/rlnas +experiment=smoke hydra.run.dir=run \
		&& test -f run/best_arch.json && echo "wheel-check: the installed wheel ran a search from an empty dir"

# Every controller on NAS-Bench-201 (noise-free and noisy) and the toy table (100 seeds;
# 50, 100 and 300 distinct evaluations) -> docs/nb201*/, docs/toy/ and the tables in
# docs/results.md; then the ablations of the RL controllers' search-for-the-best update
# -> docs/ablation_*/ and docs/ablation.md.
STUDY_BUDGETS := --seeds 100 --budgets 50 100 300 --jobs 2
ABLATIONS := --controllers enas maskable_ppo --reference enas --rivals maskable_ppo \
	--variant enas_novel_tries=0 enas controller.novel_tries=0 \
	--variant enas_risk_quantile=1 enas controller.risk_quantile=1 \
	--variant enas_elite_size=0 enas controller.elite_size=0 \
	--variant enas_uniform_policy enas controller.lr=1e-12 \
	--variant maskable_ppo_uniform_policy maskable_ppo controller.learning_rate=1e-12 controller.elite_weight=0
study: $(STAMP)
	for b in nb201_cifar10 nb201_cifar10_noisy toy; do \
		$(PY) tools/compare_controllers.py --benchmark $$b $(STUDY_BUDGETS) --out docs/$${b/_cifar10/} --readme docs/results.md || exit 1; \
		$(PY) tools/compare_controllers.py --benchmark $$b $(STUDY_BUDGETS) $(ABLATIONS) --out docs/ablation_$${b/_cifar10/} \
			--readme docs/ablation.md || exit 1; \
	done

# The RL controllers' defaults checked on tables unlike the shipped ones: three NK landscapes
# (tools/nk_tables.py; N decisions of A choices, each coupled with K others), noise-free and with one
# training seed drawn per evaluation, 40 seeds, and enas with the other novelty fallback and with local
# steps (controller.local_share=1) -> docs/nk/ and its
# blocks in docs/results.md (about 20 min).
NK_LANDSCAPES := 8,4,2,1 10,3,3,2 6,6,1,3
study-nk: $(STAMP)
	for spec in $(NK_LANDSCAPES); do \
		IFS=, read n a k s <<< "$$spec"; name=nk$${n}x$${a}k$${k}s$${s}; \
		$(PY) tools/nk_tables.py --out outputs/nk --decisions $$n --choices $$a --k $$k --seed $$s || exit 1; \
		for b in $$name $${name}_noisy; do \
			$(PY) tools/compare_controllers.py --config-dir outputs/nk --benchmark $$b --seeds 40 --budgets 50 100 300 \
				--jobs 2 --controllers random evolution local_search enas maskable_ppo \
				--variant enas_walk enas controller.fallback=walk \
				--variant enas_local enas controller.local_share=1 --out docs/nk/$$b \
				--readme docs/results.md || exit 1; \
		done; \
	done

# Trial searches on MNIST-1D, 5 per controller, over the architecture alone and with its training
# settings (+trials=joint) -> docs/mnist1d/trials*/ and their tables in docs/results.md (stored
# runs are reused: seconds with them, about 3 hours on 2 cores without), the joint searches' 5
# best trials each by ground truth (about 40 min more without their finalists.json), the joint study with a
# 2,000-signal validation split (random and enas; about 1 h without its runs); then the speed-up of 2
# concurrent trials, measured again (about 4 min) -> README.md.
MNIST1D_VAL2000 := task.data.num_samples=6250 task.data.val_fraction=0.32 task.data.test_fraction=0.56
study-trials: $(STAMP)
	$(PY) tools/trial_study.py --task mnist1d --controllers random enas evolution local_search maskable_ppo \
		--out docs/mnist1d/trials --readme docs/results.md -- data_seed=0
	$(PY) tools/trial_study.py --task mnist1d --trials joint --controllers random enas evolution maskable_ppo \
		--out docs/mnist1d/trials_hparams --readme docs/results.md --block trials_hparams -- data_seed=0
	$(PY) tools/trial_study.py --task mnist1d --trials joint --controllers random enas evolution maskable_ppo \
		--finalists 5 --out docs/mnist1d/trials_hparams --readme docs/results.md --block trials_finalists -- data_seed=0
	$(PY) tools/trial_study.py --task mnist1d --trials joint --controllers random enas --out docs/mnist1d/trials_val2000 \
		--readme docs/results.md --block trials_val2000 -- data_seed=0 $(MNIST1D_VAL2000)
	$(PY) tools/trial_study.py --task mnist1d --speedup 20 --out docs/mnist1d/trials --readme README.md

# The tasks where the architecture matters: how far uniformly drawn architectures spread by ground
# truth, and whole weight-sharing searches judged by it -> docs/mnist1d/, docs/cluttered_digits/ and
# their blocks in docs/results.md. Standalone trainings (standalone.json) and finished searches (their
# run dirs with result.json) are committed under docs/, so this writes the tables again in about a
# minute (about 8 hours on 2 cores without them); the ranking studies' commands are in docs/results.md.
study-tasks: $(STAMP)
	$(PY) tools/spread_study.py --archs 50 --seeds 3 --out docs/mnist1d/spread \
		--cache docs/mnist1d/ranking/standalone.json --readme docs/results.md +task=mnist1d
	$(PY) tools/spread_study.py --archs 30 --seeds 2 --out docs/cluttered_digits/spread \
		--readme docs/results.md --block spread_cluttered +task=cluttered_digits
	$(PY) tools/spread_study.py --archs 16 --epochs 60 --out docs/cluttered_digits/spread60 \
		--cache docs/cluttered_digits/spread/standalone.json +task=cluttered_digits
	$(PY) tools/compare_controllers.py --task mnist1d --controllers enas maskable_ppo evolution --seeds 5 --jobs 2 \
		--out docs/mnist1d/compare --readme docs/results.md -- data_seed=0 ground_truth.random=0
	$(PY) tools/compare_controllers.py --task mnist1d --controllers enas maskable_ppo --seeds 5 --jobs 2 \
		--out docs/mnist1d/compare_synflow -- data_seed=0 ground_truth.random=0 search.final_proxy=synflow
	$(PY) tools/compare_controllers.py --task mnist1d --controllers enas maskable_ppo --seeds 5 --jobs 2 \
		--out docs/mnist1d/compare_finetune -- data_seed=0 ground_truth.random=0 search.final_finetune=40
	$(PY) tools/compare_controllers.py --task mnist1d --controllers enas --seeds 5 --jobs 2 \
		--out docs/mnist1d/compare_finetune160 -- data_seed=0 ground_truth.random=0 search.final_finetune=160
	$(PY) tools/compare_controllers.py --task cluttered_digits --controllers enas maskable_ppo evolution --seeds 5 --jobs 2 \
		--out docs/cluttered_digits/compare --readme docs/results.md --block compare_cluttered -- data_seed=0

tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir outputs

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
