"""The Streamlit page of the explorer (see :mod:`analysis.explore`).

    streamlit run analysis/explore_app.py -- RUN_DIR... [--models DIR]   # or: python -m analysis.explore ...

State that a link shares is kept in the URL query: ``view``, ``run``, ``compare``, ``language``
(repeated for several), ``category`` and ``group``; on the Try a model page, ``model``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not the project's.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pandas as pd  # noqa: E402
import plotly.express as px  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402
from plotly.subplots import make_subplots  # noqa: E402

from analysis import explore  # noqa: E402
from analysis.figures import ALL  # noqa: E402
from probing.errors import UserError  # noqa: E402

MODEL_VIEW = "Try a model"
VIEWS = ("Profiles", "Completions", "Correlations", "Recall", "Runs", MODEL_VIEW)
NO_COMPARISON = "(none)"
ALL_TEMPLATES = "(all templates)"


@st.cache_resource(show_spinner="reading the run folders")
def load(paths: tuple[str, ...]):
    return explore.load_runs(list(paths))


@st.cache_data(show_spinner="reading the group's predictions", max_entries=64)
def predictions(path: str, languages: tuple[str, ...], group_id: str) -> pd.DataFrame:
    return explore.group_predictions(path, list(languages), group_id)


@st.cache_resource(show_spinner="loading the model", max_entries=3)
def tried_model(folder: str, written: int):
    """The model of the Try a model page, loaded once per folder and version (``written``: the newest
    modification time of its files, so a model trained again into the folder is loaded again), on
    CUDA when available."""
    return explore.load_model(folder, "auto")


def last_written(folder: str) -> int:
    """The newest modification time (ns) of the files directly in ``folder`` (0 if it cannot be read)."""
    try:
        return max((entry.stat().st_mtime_ns for entry in Path(folder).iterdir() if entry.is_file()), default=0)
    except OSError:
        return 0


@st.cache_resource(show_spinner="loading the lexicon")
def lexicon(_run, path: str, language: str):
    return explore.run_lexicon(_run, language)


def show_table(frame: pd.DataFrame, key: str, file_name: str, caption: str = "", probability_format: str = "%.3e") -> None:
    """A table and the button that downloads it as CSV."""
    if caption:
        st.caption(caption)
    formats = {column: st.column_config.NumberColumn(format=probability_format) for column in ("probability",)
               if column in frame.columns}  # a probability at the mask is often below 1e-4
    st.dataframe(frame, key=key, hide_index=True, width="stretch", column_config=formats)
    st.download_button(f"Download {file_name}", frame.to_csv(index=False).encode("utf-8"), file_name=file_name,
                       mime="text/csv", key=f"download_{key}")


def initial(key: str, options: list, default, *, many: bool = False) -> None:
    """Seed a widget's state from the URL query on the first run, and keep it among ``options``."""
    if key not in st.session_state:
        wanted = st.query_params.get_all(key) if many else st.query_params.get(key)
        if many:
            unknown = [w for w in wanted if w not in options]
            wanted = [w for w in wanted if w in options]
            if unknown:
                st.warning(f"the link's {key} {', '.join(unknown)} is not in the runs; shown: the default")
            st.session_state[key] = wanted or default
        else:
            if wanted is not None and wanted not in options:
                st.warning(f"the link's {key} {wanted!r} is not in the runs; shown: {default!r}")
            st.session_state[key] = wanted if wanted in options else default
    elif many:
        st.session_state[key] = [v for v in st.session_state[key] if v in options] or default
    elif st.session_state[key] not in options:
        st.session_state[key] = default


def sidebar(runs):
    """The choices of the sidebar, written back to the URL query: (view, runs compared, languages,
    category, group_id, group names)."""
    probing = explore.probing_runs(runs)
    labels = [run.label for run in probing]
    views = VIEWS if runs else (MODEL_VIEW,)  # no run folder: the explorer is there to try models
    with st.sidebar:
        st.title("stereoprobe explorer")
        initial("view", list(views), views[0])
        view = st.radio("View", views, key="view")
        state = {"view": view}
        chosen, languages, category, group_id, names = [], [], None, None, {}
        if probing:
            initial("run", labels, labels[0])
            run = st.selectbox("Run", labels, key="run")
            others = [NO_COMPARISON, *[label for label in labels if label != run]]
            initial("compare", others, NO_COMPARISON)
            compare = st.selectbox("Compare with", others, key="compare",
                                   help="a second probing run, e.g. the fine-tuned model against its base")
            chosen = [r for r in probing if r.label == run] + [r for r in probing if r.label == compare]
            all_languages = explore.languages_of(chosen)
            initial("language", all_languages, all_languages[:1], many=True)
            languages = st.multiselect("Languages", all_languages, key="language")
            categories = explore.categories_of(chosen)
            initial("category", categories, categories[0])
            category = st.selectbox("Category", categories, key="category")
            names = explore.groups_of(chosen, category)
            group_ids = list(names)
            initial("group", group_ids, group_ids[0])
            group_id = st.selectbox("Group", group_ids, key="group", format_func=lambda g: f"{names[g]} ({g})")
            state.update(run=run, language=languages, category=category, group=group_id)
            if compare != NO_COMPARISON:
                state["compare"] = compare
        if view == MODEL_VIEW and "model" in st.query_params:
            state["model"] = st.query_params["model"]  # page_model reads and updates it
        st.caption("The URL holds these choices: copy it to share this view.")
    st.query_params.from_dict(state)
    return view, chosen, languages, category, group_id, names


def profile_chart(long: pd.DataFrame, kind: str, emotions: list[str], titles: dict[str, str]) -> go.Figure:
    """Bars (one panel per language, one colour per run) or radars (one per language); ``titles``:
    each language's panel title."""
    languages = list(dict.fromkeys(long["language"]))
    if kind == "bars":
        figure = px.bar(long, x="emotion", y="value", color="run", barmode="group", facet_col="language",
                        facet_col_wrap=3, facet_row_spacing=0.25,
                        category_orders={"emotion": emotions, "language": languages,
                                         "run": list(dict.fromkeys(long["run"]))},
                        hover_data={"series": True}, range_y=[0, 1], labels={"value": "share of covered words"},
                        height=420 * (1 + (len(languages) - 1) // 3))
        figure.update_layout(margin={"t": 40 + 16 * long["run"].nunique()})
        figure.for_each_annotation(lambda a: a.update(text=titles.get(a.text.replace("language=", ""), a.text)))
        return figure
    figure = make_subplots(rows=1, cols=len(languages), specs=[[{"type": "polar"}] * len(languages)],
                           subplot_titles=[titles.get(lang, lang) for lang in languages])
    colours = px.colors.qualitative.Plotly
    for j, language in enumerate(languages):
        for k, (run, part) in enumerate(long[long["language"] == language].groupby("run", sort=False)):
            part = part.set_index("emotion").reindex(emotions)
            figure.add_trace(go.Scatterpolar(r=[*part["value"], part["value"].iloc[0]], theta=[*emotions, emotions[0]],
                                             name=part["series"].iloc[0], line={"color": colours[k % len(colours)]},
                                             legendgroup=run), row=1, col=j + 1)
    figure.update_polars(radialaxis={"range": [0, 1]})
    return figure


def page_profiles(runs, languages, group_id, names) -> None:
    st.header(f"Emotion profile: {names.get(group_id, group_id)}")
    untrained = [run.label for run in runs if explore.random_weights(run)]
    if untrained:
        st.warning(f"{' and '.join(untrained)} {'has' if len(untrained) == 1 else 'have'} random weights: "
                   f"{'its' if len(untrained) == 1 else 'their'} profiles mean nothing (tests and demos only)")
    rows = explore.profile_rows(runs, group_id, languages)
    if rows.empty:
        st.info("no profile of this group in the chosen languages; pick other languages")
        return
    emotions = explore.emotions_of(rows.drop(columns="run"))
    kind = st.radio("Chart", ["bars", "radar"], horizontal=True, key="chart")
    st.plotly_chart(profile_chart(explore.long_profiles(rows), kind, emotions, explore.coverage_titles(rows)),
                    key="profile_chart")
    undefined = rows[rows[emotions].isna().all(axis=1)]
    if len(undefined):
        st.caption("Undefined (no completion the lexicon covers): "
                   + ", ".join(f"{lang} · {run}" for run, lang in zip(undefined["run"], undefined["language"])))
    show_table(rows, "profiles_table", f"profile_{group_id}.csv",
               "Share of the group's covered words (n_covered of its n_words unique kept words) in each dimension.")
    if len(runs) == 2:
        shift = explore.profile_shift(rows, runs[0].label, runs[1].label)
        show_table(shift, "profile_shift", f"profile_shift_{group_id}.csv",
                   f"{runs[1].label} minus {runs[0].label}, per language.")


def page_completions(runs, languages, group_id, names) -> None:
    st.header(f"Completions: {names.get(group_id, group_id)}")
    readable = [run for run in runs if explore.has_predictions(run)]
    for run in runs:
        if run not in readable:
            st.info(f"{run.label} has no predictions.parquet: its completions cannot be shown")
    if not readable or not languages:
        if not languages:
            st.info("pick a language")
        return
    frames = {run.label: predictions(str(run.path), tuple(languages), group_id) for run in readable}
    templates = sorted({t for frame in frames.values() for t in frame["template_id"].unique()})
    template = st.selectbox("Template", [ALL_TEMPLATES, *templates], key="template")
    columns = st.columns(len(readable))
    for column, run in zip(columns, readable):
        rows = frames[run.label]
        if template != ALL_TEMPLATES:
            rows = rows[rows["template_id"] == template]
        with column:
            st.subheader(run.label)
            st.caption(explore.completions_note(run))
            if rows.empty:
                st.info("no prediction of this group in the chosen languages and template")
                continue
            lexicons = {}
            for language in languages:
                lexicons[language], note = lexicon(run, str(run.path), language)
                if note:
                    st.caption(note)
            sentences = rows[["language", "template_id", "sentence"]].drop_duplicates()
            show_table(sentences, f"sentences_{run.label}", f"sentences_{run.label}_{group_id}.csv")
            kept, dropped = explore.completion_tables(rows, lexicons)
            stem = f"{run.label}_{group_id}_{'all' if template == ALL_TEMPLATES else template}"
            show_table(kept, f"kept_{run.label}", f"kept_{stem}.csv",
                       f"Kept: {len(kept)} completions (probability = exp(log_prob); dimensions from the run's "
                       f"lexicon).")
            reasons = dropped.groupby(["language", "drop_reason"]).size().reset_index(name="n")
            show_table(reasons, f"reasons_{run.label}", f"drop_reasons_{stem}.csv",
                       f"Dropped: {len(dropped)} completions, by reason.")
            show_table(dropped, f"dropped_{run.label}", f"dropped_{stem}.csv")


def correlation_chart(rows: pd.DataFrame, method: str) -> go.Figure:
    """rho with its interval (whiskers) over the permutation null band (grey) for each row."""
    labels = explore.correlation_label(rows)
    figure = go.Figure()
    for label, low, high in zip(labels, rows["null_low"], rows["null_high"]):
        figure.add_trace(go.Scatter(x=[low, high], y=[label, label], mode="lines", showlegend=False,
                                    line={"color": "rgba(150,150,150,0.45)", "width": 9}, hoverinfo="skip"))
    figure.add_trace(go.Scatter(
        x=rows["rho"], y=labels, mode="markers", name="rho (95% interval)", marker={"color": "#1f77b4", "size": 8},
        error_x={"type": "data", "symmetric": False, "array": rows["ci_high"] - rows["rho"],
                 "arrayminus": rows["rho"] - rows["ci_low"]},
        customdata=rows[["p", "p_adjusted", "n_groups"]],
        hovertemplate="rho %{x:.3f}<br>p %{customdata[0]:.3g}, adjusted %{customdata[1]:.3g}<br>"
                      "%{customdata[2]} groups<extra></extra>"))
    figure.add_vline(0, line_width=1, line_color="black")
    figure.update_layout(title=f"{method}: rho, interval and null band (grey)", xaxis_title="Spearman's rho",
                         xaxis_range=[-1.05, 1.05], height=160 + 22 * len(rows), yaxis={"autorange": "reversed"})
    return figure


def pick_run(runs, table: str, key: str, what: str):
    holding = [run for run in runs if table in run.tables]
    if not holding:
        st.info(f"none of the folders holds {table}; pass one written by {what}")
        return None
    labels = [run.label for run in holding]
    label = st.selectbox("Folder", labels, key=key) if len(labels) > 1 else labels[0]
    return next(run for run in holding if run.label == label)


def page_correlations(runs) -> None:
    st.header("Correlations")
    run = pick_run(runs, "correlations.csv", "correlation_run", "python -m analysis.correlate")
    if run is None:
        return
    table = run.tables["correlations.csv"]
    left, middle, right = st.columns(3)
    methods = left.multiselect("Method", sorted(table["method"].unique()), default=sorted(table["method"].unique()),
                               key="correlation_method")
    categories = sorted(table["category"].unique(), key=lambda c: (c != ALL, c))
    chosen_categories = middle.multiselect("Category", categories, default=categories, key="correlation_category")
    languages = sorted(table["language"].astype(str).unique())
    # the sidebar's languages when there are probing runs: a full study's chart would have hundreds of rows
    sidebar_languages = [lang for lang in st.session_state.get("language", []) if lang in languages]
    chosen_languages = right.multiselect("Language", languages, default=sidebar_languages or languages,
                                         key="correlation_language")
    rows = explore.filter_rows(table, method=methods, category=chosen_categories, language=chosen_languages)
    if rows.empty:
        st.info("no correlation row matches the filters")
    for method in methods:
        part = rows[(rows["method"] == method) & rows["rho"].notna()]
        if len(part):
            st.plotly_chart(correlation_chart(part, method), key=f"correlation_chart_{method}")
    st.caption("rho: Spearman's rho (mean over groups for spearman and rsa); ci_low/ci_high: percentile bootstrap "
               "over groups; null_low/null_high: the 2.5–97.5 percentiles of the permutation null; p: one-sided "
               "permutation p; p_adjusted: Benjamini-Hochberg within the row's family (bh_family, when recorded).")
    show_table(rows[[*explore.CORRELATION_COLUMNS, "reference", "other"]], "correlations_table",
               f"correlations_{run.label}.csv")
    if "shifts.csv" in run.tables:
        shifts = explore.filter_rows(run.tables["shifts.csv"], category=chosen_categories, language=chosen_languages)
        show_table(shifts, "shifts_table", f"shifts_{run.label}.csv",
                   "Mean shift per emotion (other − reference), with its bootstrap interval.")
    if "excluded.csv" in run.tables:
        excluded = explore.filter_rows(run.tables["excluded.csv"], category=chosen_categories,
                                       language=chosen_languages)
        with st.expander(f"Groups left out of the comparisons ({len(excluded)})"):
            show_table(excluded, "excluded_table", f"excluded_{run.label}.csv")


def page_recall(runs) -> None:
    st.header("Recall of human-collected stereotypes")
    run = pick_run(runs, "recall.csv", "recall_run", "python -m analysis.recall")
    if run is None:
        return
    table = run.tables["recall.csv"]
    left, middle, right = st.columns(3)
    levels = sorted(table["level"].unique())
    level = left.selectbox("Level", levels, key="recall_level",
                           help="row: each (sentence, attribute); group: a group's attributes in any of its sentences")
    categories = sorted(table["category"].unique(), key=lambda c: (c != ALL, c))
    chosen_categories = middle.multiselect("Category", categories, default=categories[:1], key="recall_category")
    languages = sorted(table["language"].astype(str).unique())
    chosen_languages = right.multiselect("Language", languages, default=languages, key="recall_language")
    rows = explore.filter_rows(table, level=[level], category=chosen_categories, language=chosen_languages)
    if rows.empty:
        st.info("no recall row matches the filters")
    else:
        curve = rows.assign(curve=[f"{r} · {lang} · {c}" for r, lang, c in
                                   zip(rows["run"], rows["language"], rows["category"])],
                            above=rows["ci_high"] - rows["recall"], below=rows["recall"] - rows["ci_low"])
        figure = px.line(curve, x="k", y="recall", color="curve", markers=True, log_x=True, error_y="above",
                         error_y_minus="below", hover_data=["n", "recalled", "n_groups"])
        figure.update_layout(yaxis_title="recall@k (95% interval)")
        st.plotly_chart(figure, key="recall_chart")
    show_table(rows, "recall_table", f"recall_{run.label}.csv")


def page_runs(runs) -> None:
    st.header("Run folders")
    show_table(pd.DataFrame([explore.run_summary(run) for run in runs]), "runs_table", "runs.csv")
    for run in runs:
        if "filters.csv" in run.tables:
            show_table(run.tables["filters.csv"], f"filters_{run.label}", f"filters_{run.label}.csv",
                       f"{run.label}: what the word filters kept and dropped, per language.")


def model_choice(root: Path) -> str | None:
    """The model folder the page is to load: a path typed in, else the one picked among ``root``'s
    model folders; None when there is neither. The URL's ``model`` (a name in ``root`` or a path)
    seeds them on the first run."""
    folders = explore.model_folders(root)
    names = list(folders)
    wanted = st.query_params.get("model")
    if "model_path" not in st.session_state:
        st.session_state["model_path"] = wanted if wanted is not None and wanted not in names else ""
    if names and st.session_state.get("model") not in names:
        st.session_state["model"] = wanted if wanted in names else names[0]
    left, right = st.columns(2)
    name = None
    if names:
        name = left.selectbox(f"Model in {root}", names, key="model")
    else:
        left.info(f"no model folder (with a config.json) in {root}; type a folder's path, or start the explorer "
                  f"with --models DIR")
    typed = right.text_input("or a model folder's path", key="model_path",
                             help="a folder written by finetune.train, or a masked LM saved by save_pretrained")
    typed = typed.strip()
    if typed or name:
        st.query_params["model"] = typed or name
    return typed or (str(folders[name]) if name else None)


def page_model(root: Path) -> None:
    st.header("Try a model")
    chosen = model_choice(root)
    if chosen is None:
        return
    try:
        folder = str(Path(chosen).expanduser().resolve())
        tried = tried_model(folder, last_written(folder))
    except UserError as error:
        st.warning(str(error))
        return
    manifest, tokenizer = tried.manifest, tried.tokenizer
    if manifest.get("random_weights"):
        st.warning(f"{tried.folder.name} has random weights: its predictions mean nothing (tests and demos only)")
    heads = ", ".join(f"{task.name} ({task.type})" for task in tried.model.tasks) or "none (a masked LM only)"
    st.caption(f"{tried.folder} on {tried.device}: task heads {heads}; up to {tried.max_length} tokens per sentence"
               + (f"; LM head: {manifest['lm_head']}" if manifest.get("lm_head") else ""))
    mask = tokenizer.mask_token
    sentence = st.text_area("Sentence (any of our languages)", key="sentence", height=80,
                            placeholder=f"e.g. Anna Smith moved to Paris last {mask or 'year'} .")
    if not sentence.strip():
        st.info("type a sentence to see each head's prediction"
                + (f"; put {mask} in it to see the model's completions" if tried.scorer is not None else ""))
        return
    if tried.model.tasks:
        row = explore.head_predictions(tried, sentence)
        for task in tried.model.tasks:
            st.subheader(f"{task.name} ({task.type})")
            table = explore.task_table(task, row, sentence)
            prediction = row[f"{task.name}_prediction"]
            if task.type == "token":
                words, tags = table["word"].tolist(), table["tag"].tolist()
                st.html(f"<p>{explore.marked_text(words, tags)}</p>")
                untagged = tags.count("")
                if untagged:
                    st.caption(f"{untagged} word(s) beyond {tried.max_length} tokens have no tag")
            else:
                shown = " | ".join(prediction.split("|")) if task.type == "multilabel" else prediction
                st.markdown(f"**prediction:** {shown}")
            show_table(table, f"task_{task.name}", f"{task.name}.csv", {
                "multiclass": "softmax probability of each label",
                "binary": f"sigmoid probability of {task.labels[1]}, and 1 - p of {task.labels[0]}; "
                          f"predicted {task.labels[1]} when p >= 0.5",
                "multilabel": "sigmoid score of each label; predicted when >= 0.5",
                "token": "one tag per white-space word (the first token of each word)"}[task.type],
                       probability_format="%.4f")
    if tried.scorer is None:
        st.caption("the tokenizer has no mask token: no completions")
        return
    st.subheader(f"Completions of {mask}")
    if mask not in sentence:
        st.info(f"put {mask} in the sentence to see the model's top completions there")
        return
    k = st.number_input("completions", min_value=1, max_value=100, value=explore.MASK_TOP_K, key="mask_top_k")
    try:
        completions = explore.mask_completions(tried, sentence, int(k))
    except UserError as error:  # e.g. the mask beyond the tokens the model reads
        st.info(str(error))
        return
    show_table(completions, "mask_completions", "completions.csv",
               f"the {int(k)} most probable tokens at the first {mask} (probability: softmax of the LM head over "
               f"the full vocabulary)" + ("; the other masks stay masked" if sentence.count(mask) > 1 else ""))


def main(argv: list[str]) -> None:
    st.set_page_config(page_title="stereoprobe explorer", layout="wide")
    try:
        args = explore.app_arguments(argv)
        runs = load(tuple(args.runs)) if args.runs else []
    except UserError as error:
        st.error(f"error: {error}")
        st.stop()
    view, chosen, languages, category, group_id, names = sidebar(runs)
    if view == MODEL_VIEW:
        page_model(explore.models_root(args.models))
    elif view in ("Profiles", "Completions") and not chosen:
        st.info("none of the folders is a probing run (profiles.csv); pass one written by python -m probing.run")
    elif view == "Profiles":
        page_profiles(chosen, languages, group_id, names)
    elif view == "Completions":
        page_completions(chosen, languages, group_id, names)
    elif view == "Correlations":
        page_correlations(runs)
    elif view == "Recall":
        page_recall(runs)
    else:
        page_runs(runs)


main(sys.argv[1:])
