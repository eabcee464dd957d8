# make demo : install, make a small data set, train briefly on the CPU, enhance the test images (offline)
# make test : install, run the test suite
# make app : install the web demo's packages (requirements-app.txt); then python app.py --checkpoints saves/LSRW
# make visdom : optional live training display
# make mutation MODULES="models/temporal.py util/locks.py" : mutation testing of those modules (scripts/mutation.py)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO := demo
# test processes (pytest-xdist; a test file stays in one process, so its shared fixtures are built once)
TEST_WORKERS ?= 2
DEMO_FLAGS := --gpu_ids -1 --name demo --checkpoints_dir $(DEMO)/saves

.PHONY: install app test demo visdom clean-demo mutation

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt -r requirements-dev.txt
	touch $@

app: install $(VENV)/.app-installed

$(VENV)/.app-installed: requirements-app.txt
	$(BIN)/pip install -q -r requirements-app.txt
	touch $@

test: install app
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

demo: install
	$(BIN)/python scripts/make_demo_data.py --out $(DEMO)/dataset
	$(BIN)/python train.py --dataroot $(DEMO)/dataset $(DEMO_FLAGS) --clip_pretrained none --display_id 0 --overwrite \
		--ngf 16 --ndf 16 --load_size 80 --crop_size 64 --n_epochs 40 --n_epochs_decay 20 \
		--print_freq 3 --display_freq 30 --update_html_freq 30 --save_epoch_freq 20 --num_threads 1 --lr_step_after_epoch \
		--val_dataroot $(DEMO)/dataset --val_freq 5
	$(BIN)/python test.py --dataroot $(DEMO)/dataset $(DEMO_FLAGS) --ngf 16 --preprocess none \
		--results_dir $(DEMO)/results --epoch best --metrics

mutation: install
	$(BIN)/python scripts/mutation.py $(MODULES)

visdom: install
	$(BIN)/pip install -q "setuptools<81"
	$(BIN)/pip install -q --no-build-isolation visdom==0.2.4

clean-demo:
	rm -rf $(DEMO)
