"""Estimators -> pickle-free members, on the publisher's machine (may import scikit-learn,
XGBoost, joblib; the function never does).

``estimators`` turns one fitted estimator into a member's bytes and spec, ``linear`` a linear
meta-learner into JSON coefficients, ``probe`` builds rows that walk the trees' split points,
and ``assemble`` puts members together as a bundle and refuses it unless every member and the
combination, loaded exactly as the function loads them, answer what the originals answer.
"""

from tickerserve.errors import TickerserveError


class NotConvertible(TickerserveError):
    """This estimator (or folder) cannot become a pickle-free member; the message says why."""

    status = 400
    code = "not_convertible"
