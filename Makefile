# Two commands do all the set-up on a fresh machine:
#   make book   create .venv if missing, install, execute every chapter (quick profile), render _build/html
#   make test   unit tests, the assignments (solutions run, student copies current), every notebook
#               under nbmake, and a strict book build (-W: any cell error
#               or broken cross-reference fails)
# ANOLEARN_PROFILE=full make book   renders the book with the papers' settings (needs a GPU and time).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JB := $(VENV)/bin/jupyter-book
STAMP := $(VENV)/.anolearn-installed
# Two pytest-xdist workers on two cores: one thread each, or they fight over the cores.
XDIST ?= 2
export OMP_NUM_THREADS ?= 1
export PYTHONHASHSEED ?= 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: env book test unit notebooks assignments book-check data clean

env: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[book,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

# The built-in synthetic dataset of the active profile, written once (notebooks then only read it).
data: env
	$(PY) data_scripts/make_synthetic.py

book: data
	$(JB) build --all -W --keep-going .
	@echo "Open _build/html/index.html"

unit: env
	$(PY) -m pytest -n $(XDIST) tests

# nbmake runs a copy of the book and writes the outputs into the copy (--overwrite), so the
# strict build below renders those outputs instead of executing every chapter a second time.
notebooks: data
	rm -rf executed_book && mkdir -p executed_book
	cp -r _config.yml _toc.yml book executed_book/
	sed -i 's/^\(\s*execute_notebooks:\).*/\1 "off"/' executed_book/_config.yml
	$(PY) -m pytest --nbmake --nbmake-timeout=600 --overwrite -n $(XDIST) -p no:cacheprovider executed_book/book

# Instructor versions of the assignments run end to end (their check cells must pass); the
# student versions must be regenerated whenever an instructor version changes.
assignments: data
	$(PY) assignments/make_student.py --check
	$(PY) -m pytest --nbmake --nbmake-timeout=600 -n $(XDIST) -p no:cacheprovider assignments/instructor

book-check: notebooks
	$(JB) build --all -W --keep-going executed_book

test: unit assignments book-check
	@echo "make test: unit tests, notebooks and the strict book build all passed."

clean:
	rm -rf _build executed_book .pytest_cache
