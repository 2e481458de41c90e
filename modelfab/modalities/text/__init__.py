"""Free-text columns of tables: TF-IDF features and linear models, stored without pickle.

Text stays a column of a table dataset: a table whose inputs include free-text
columns is trained by the tabular AutoML engine, which fits one
:class:`~modelfab.modalities.text.column.TextColumnModel` per text column (word and
character n-gram TF-IDF plus a linear model chosen by cross-validation under the
budget) and gives its out-of-fold scores to the tree learners beside the other
columns. Chinese is segmented with rjieba when installed (``pip install
modelfab[text]``) and always gets character n-grams.
"""
