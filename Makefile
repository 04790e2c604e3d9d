# Two commands do all the set-up on a fresh machine:
#   make book   create .venv if missing, install, execute every chapter (quick profile), render _build/html
#   make test   unit tests, the assignments (solutions run, student copies current), every chapter
#               in _toc.yml under nbmake, a strict book build (-W: any cell error or broken
#               cross-reference fails), and a browser check of every rendered page (headless Chromium,
#               installed first with apt on Debian/Ubuntu when missing: make browser-deps)
#   make lab    open the chapters in JupyterLab
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
# Chapters skip their live ipywidgets explorers when the book is built (a static page cannot redraw
# them; each has a static figure beside it). Progress bars are still saved and rendered.
export ANOLEARN_BOOK_BUILD := 1

.PHONY: env book test unit notebooks assignments book-check browser-check browser-deps book-assets data lab clean

# Offline book: the JavaScript the pages load (MathJax 3 for the math; RequireJS and the ipywidgets
# HTML manager for the saved widgets, e.g. tqdm progress bars) comes from the npm registry, pinned,
# into _vendor/, which _config.yml adds to the book's static files. (Not _static/: Jupyter Book
# puts every .js file under _static/ on every page.) Without npm, each entry file is a stub that
# loads the same version from the CDN, so the book still builds but needs the internet.
VENDOR := _vendor
MATHJAX := mathjax@3.2.2
WIDGETS := @jupyter-widgets/html-manager@1.0.6
REQUIREJS := requirejs@2.3.4
VENDOR_STAMP := $(VENDOR)/.installed-$(subst /,_,$(MATHJAX)-$(WIDGETS)-$(REQUIREJS))
# What MathJax's tex-chtml.js loads at run time: its fonts, the TeX extensions it autoloads
# (\boldsymbol, \color, ...) and the accessibility modules (and speech rules) its menu offers.
MATHJAX_PARTS := tex-chtml.js output/chtml/fonts/woff-v2 input/tex/extensions a11y sre
CDN := https://cdn.jsdelivr.net/npm
# $(call cdn_stub,FILE,URL): FILE becomes a script that loads URL (in order with other stubs).
cdn_stub = printf '%s\n' "// Not installed (no npm when the book was built): load it from the CDN." \
	"(function () { var s = document.createElement('script'); s.src = '$(2)'; s.async = false;" \
	"  document.head.appendChild(s); })();" > $(1)

# The chapters the book renders: the notebooks listed in _toc.yml. A notebook in book/ that is not
# (yet) in the table of contents is neither executed nor rendered. The student assignments in
# _toc.yml are not in book/, so they are never executed here: they are rendered unsolved, as
# handed out (the instructor versions are run by `make assignments`).
TOC_FILES = $(shell sed -n 's/^[[:space:]-]*file:[[:space:]]*\([^[:space:]#]*\).*/\1/p' _toc.yml)
TOC_NOTEBOOKS = $(filter $(wildcard book/*.ipynb),$(patsubst %.ipynb.ipynb,%.ipynb,$(addsuffix .ipynb,$(TOC_FILES))))

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

book-assets: $(VENDOR_STAMP)

$(VENDOR_STAMP): Makefile
	@rm -rf $(VENDOR) && mkdir -p $(VENDOR)/mathjax $(VENDOR)/widgets
	@# The widget manager looks for its fonts in <page folder>/@jupyter-widgets/html-manager/dist/
	@# (RequireJS's default module path): point that at the folder it is in, before RequireJS loads.
	@printf '%s\n' "// Written by 'make book-assets': the widget manager's files are in this folder." \
		"(function () { var here = document.currentScript.src.replace(/[^/]*$$/, '');" \
		"  window.require = {paths: {'@jupyter-widgets/html-manager/dist': here.slice(0, -1)}}; })();" \
		> $(VENDOR)/widgets/assets-path.js
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	fetch() { mkdir "$$tmp/$$1" && npm pack --silent --pack-destination "$$tmp/$$1" "$$2" >/dev/null && \
		tar -xzf "$$tmp/$$1"/*.tgz -C "$$tmp/$$1"; }; \
	if command -v npm >/dev/null 2>&1 && fetch mathjax $(MATHJAX) && fetch widgets $(WIDGETS) && \
			fetch requirejs $(REQUIREJS); then \
		set -e; \
		for part in $(MATHJAX_PARTS); do \
			mkdir -p "$(VENDOR)/mathjax/$$(dirname $$part)"; \
			cp -r "$$tmp/mathjax/package/es5/$$part" "$(VENDOR)/mathjax/$$part"; \
		done; \
		cp "$$tmp/mathjax/package/LICENSE" $(VENDOR)/mathjax/; \
		cp "$$tmp/widgets/package/dist/embed-amd.js" "$$tmp/widgets/package/LICENSE" \
			"$$tmp/widgets/package/dist/"*.woff2 "$$tmp/widgets/package/dist/"*.woff \
			"$$tmp/widgets/package/dist/"*.ttf $(VENDOR)/widgets/; \
		cp "$$tmp/requirejs/package/require.js" $(VENDOR)/widgets/; \
		touch $@; \
		echo "Installed $(MATHJAX), $(WIDGETS) and $(REQUIREJS) into $(VENDOR)/: the book reads offline."; \
	else \
		$(call cdn_stub,$(VENDOR)/mathjax/tex-chtml.js,$(CDN)/$(MATHJAX)/es5/tex-chtml.js); \
		$(call cdn_stub,$(VENDOR)/widgets/require.js,$(CDN)/$(REQUIREJS)/require.js); \
		$(call cdn_stub,$(VENDOR)/widgets/embed-amd.js,$(CDN)/$(WIDGETS)/dist/embed-amd.js); \
		printf '%s\n' "window.require = {paths: {'@jupyter-widgets/html-manager/dist': '$(CDN)/$(WIDGETS)/dist'}};" \
			> $(VENDOR)/widgets/assets-path.js; \
		echo "WARNING: npm or the npm registry is not available: the book will load MathJax and the" >&2; \
		echo "  widget scripts from $(CDN), so its math needs the internet. Install Node.js and npm," >&2; \
		echo "  then run 'make book-assets' (or 'make book') again for a book that reads offline." >&2; \
	fi

book: data book-assets
	$(JB) build --all -W --keep-going .
	@echo "Open _build/html/index.html"

# The chapters in JupyterLab, with their live widgets (which the book build skips); extra options
# through LAB_ARGS, e.g. make lab LAB_ARGS="--no-browser --port 8890".
LAB_ARGS ?=
lab: data
	env -u ANOLEARN_BOOK_BUILD $(PY) -m jupyterlab --ServerApp.root_dir=book $(LAB_ARGS)

unit: env
	$(PY) -m pytest -n $(XDIST) tests

# nbmake runs a copy of the book and writes the outputs into the copy (--overwrite), so the
# strict build below renders those outputs instead of executing every chapter a second time.
notebooks: data book-assets
	rm -rf executed_book && mkdir -p executed_book
	cp -r _config.yml _toc.yml book $(VENDOR) executed_book/
	mkdir -p executed_book/assignments && cp -r assignments/student executed_book/assignments/
	@# Chapters show the committed benchmark tables; they look for them in ../benchmarks/results.
	mkdir -p executed_book/benchmarks && cp -r benchmarks/results executed_book/benchmarks/
	sed -i 's/^\(\s*execute_notebooks:\).*/\1 "off"/' executed_book/_config.yml
	$(if $(TOC_NOTEBOOKS),,$(error no notebook of _toc.yml found in book/))
	$(PY) -m pytest --nbmake --nbmake-timeout=600 --overwrite -n $(XDIST) -p no:cacheprovider \
		$(addprefix executed_book/,$(TOC_NOTEBOOKS))
	@# A chapter that fell back to "results not here" would render without its table: fail instead.
	$(PY) -c "import sys, nbformat; bad = [p for p in sys.argv[1:] for c in nbformat.read(p, 4).cells \
		if c.cell_type == 'code' and 'is not here (e.g. on Colab)' in str(c.get('outputs', ''))]; \
		sys.exit(f'benchmark results missing in: {sorted(set(bad))}' if bad else 0)" \
		$(addprefix executed_book/,$(TOC_NOTEBOOKS))

# Instructor versions of the assignments run end to end (their check cells must pass); the
# student versions must be regenerated whenever an instructor version changes.
assignments: data
	$(PY) assignments/make_student.py --check
	$(PY) -m pytest --nbmake --nbmake-timeout=600 -n $(XDIST) -p no:cacheprovider assignments/instructor

book-check: notebooks book-assets
	$(JB) build --all -W --keep-going executed_book

# Every page of the strict build opened in headless Chromium (figures load, no error outputs, internal
# links and anchors resolve, math typeset by the local MathJax, nothing from another host, Colab buttons right); full-page
# screenshots land in executed_book/_build/screenshots/.
browser-check: book-check
	$(PY) tests/browser/check_rendered_book.py --book-dir executed_book/_build/html

# Headless Chromium and chromedriver for browser-check. Missing on Debian/Ubuntu: installed with
# apt-get (as root, or through sudo when it needs no password). Otherwise make stops here, before
# the long steps of make test, with the one command to run.
browser-deps:
	@if { command -v chromium || command -v chromium-browser; } >/dev/null 2>&1 && \
		{ [ -x /usr/bin/chromedriver ] || command -v chromedriver; } >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make test needs Chromium and chromedriver (browser check). Install both with your package" \
			"manager (e.g. brew install --cask chromium chromedriver) and run make test again." >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else \
		echo "make test needs Chromium and chromedriver (browser check). Install them with:" >&2; \
		echo "  sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2; \
		echo "(Ubuntu: chromium-browser chromium-chromedriver), then run make test again." >&2; exit 1; \
	fi; \
	echo "Installing Chromium and chromedriver with apt-get (for the browser check)..."; \
	$$SUDO apt-get update -qq && \
	if apt-cache show chromium-driver >/dev/null 2>&1; then packages="chromium chromium-driver"; \
	else packages="chromium-browser chromium-chromedriver"; fi && \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$packages >/dev/null

test: browser-deps unit assignments book-check browser-check
	@echo "make test: unit tests, notebooks, the strict book build and the browser check all passed."

clean:
	rm -rf _build executed_book .pytest_cache
