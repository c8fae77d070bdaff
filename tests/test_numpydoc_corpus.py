"""scripts/corpora/numpydoc_corpus.py's See Also parsing on an inline docstring: the names it lists (roles,
several names a line, descriptions left out), the section removed from the text and nothing else, and the names
resolved to article ids (relative to the object's class, module and package, aliases to one id, unresolved and
self links dropped)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("numpydoc_corpus", ROOT / "scripts" / "corpora" / "numpydoc_corpus.py")
numpydoc_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(numpydoc_corpus)

DOC = """Merge two frames on their keys.

    Parameters
    ----------
    right : DataFrame
        The frame to merge with, see :func:`merge_asof` for ordered keys.

    See Also
    --------
    merge_ordered : Merge with optional filling:
        continued description that names DataFrame.update, which is no entry.
    DataFrame.join, concat
    :meth:`pandas.Series.map`
    np.sum : A numpy function, through its alias.
    scipy.nowhere : Not an article.
    DataFrame.merge : The object itself.

    Notes
    -----
    Keys are compared by equality.
    """


def test_see_also_names_are_parsed_and_the_section_removed():
    text, names = numpydoc_corpus.parse_docstring(DOC)
    assert names == ["merge_ordered", "DataFrame.join", "concat", "pandas.Series.map", "np.sum", "scipy.nowhere",
                     "DataFrame.merge"]
    assert "See Also" not in text and "merge_ordered" not in text and "DataFrame.update" not in text
    assert text.startswith("Merge two frames on their keys.\n\nParameters\nright : DataFrame")
    assert "see merge_asof for ordered keys." in text  # a role in the body keeps its shown text
    assert text.endswith("Notes\nKeys are compared by equality.") and "--" not in text


def test_see_also_names_resolve_to_canonical_ids_and_unresolved_ones_are_dropped():
    public = {"pandas.merge_ordered": "pandas.merge_ordered", "pandas.DataFrame.join": "pandas.DataFrame.join",
              "pandas.concat": "pandas.concat", "pandas.Series.map": "pandas.Series.map",
              "numpy.sum": "numpy.sum", "pandas.DataFrame.merge": "pandas.DataFrame.merge",
              "pandas.core.reshape.concat.concat": "pandas.concat"}
    _, names = numpydoc_corpus.parse_docstring(DOC)
    ids, dropped = numpydoc_corpus.resolve_names(names + ["pandas.core.reshape.concat.concat"],
                                                 "pandas.DataFrame.merge", public.get)
    assert ids == ["pandas.merge_ordered", "pandas.DataFrame.join", "pandas.concat", "pandas.Series.map",
                   "numpy.sum"]  # the alias of concat once, no self link
    assert dropped == 1  # scipy.nowhere


def test_a_docstring_without_see_also_is_kept_whole():
    text, names = numpydoc_corpus.parse_docstring("Sum of the elements.\n\n    Returns\n    -------\n    out\n")
    assert names == [] and text == "Sum of the elements.\n\nReturns\nout"
