"""Real tiny networks for the tests: GRUs trained with torch and PPO policies trained with
stable-baselines3 on a small trading environment defined here, saved exactly as seed 001's
model artifact document shows (``model.pth`` dict, ``metadata.json``, ``config.json``,
``preprocessor.pkl``; ``model.zip``, ``model_metadata.json``, ``model_vecnormalize.pkl``)."""

from __future__ import annotations

import functools
import json
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import joblib
import numpy as np
import torch
from gymnasium import spaces
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler
from torch import nn

FEATURES = [f"f{i}" for i in range(12)]
SCALERS = {"standard": StandardScaler, "minmax": MinMaxScaler, "robust": RobustScaler}


class GRUModel(nn.Module):
    """Seed 001's GRU (Bot_kilo's ``GRUModel``): GRU layers, the last step's dropout, fc1,
    ReLU, fc2."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 16,
        num_layers: int = 2,
        dropout: float = 0.2,
        output_size: int = 1,
        bidirectional: bool = False,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        self.batch_first = batch_first
        self.gru = nn.GRU(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0,
            batch_first=batch_first,
            bidirectional=bidirectional,
        )
        width = hidden_size * (2 if bidirectional else 1)
        self.dropout_layer = nn.Dropout(dropout)
        self.fc1 = nn.Linear(width, hidden_size // 2)
        self.fc2 = nn.Linear(hidden_size // 2, output_size)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch_first:
            out, _ = self.gru(x)
            last = out[:, -1, :]
        else:
            out, _ = self.gru(x.transpose(0, 1))
            last = out[-1]
        return self.fc2(self.relu(self.fc1(self.dropout_layer(last))))


def market(rows: int, n_features: int, seed: int) -> np.ndarray:
    """Feature rows on very different scales (what a scaler is for), a few missing."""
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.5, 20.0, size=n_features)
    shift = rng.normal(size=n_features) * 5
    x = rng.normal(size=(rows, n_features)) * scale + shift
    x[rng.random(x.shape) < 0.01] = np.nan
    return x


def train_gru(
    n_features: int = 5,
    *,
    window: int = 8,
    hidden: int = 16,
    layers: int = 2,
    outputs: int = 1,
    bidirectional: bool = False,
    batch_first: bool = True,
    scaler: str = "standard",
    seed: int = 0,
    classify: bool = False,
) -> tuple[GRUModel, dict[str, Any]]:
    """A GRU trained for a few epochs on windows of scaled features, and its preprocessor
    as seed 001's DataPreprocessor saves it."""
    torch.manual_seed(seed)
    x = market(240, n_features, seed)
    imputer = SimpleImputer(strategy="median")
    fitted = SCALERS[scaler]()
    scaled = fitted.fit_transform(imputer.fit_transform(x))
    windows = np.stack([scaled[i : i + window] for i in range(len(scaled) - window + 1)])
    target = np.tanh(windows[:, -1, :1] - 0.5 * windows[:, -2, 1:2])
    model = GRUModel(n_features, hidden, layers, 0.2, outputs, bidirectional, batch_first)
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    xt = torch.as_tensor(windows, dtype=torch.float32)
    if classify:
        yt = torch.as_tensor((target[:, 0] > 0).astype(np.int64) % outputs)
        loss_fn: Any = nn.CrossEntropyLoss()
    else:
        yt = torch.as_tensor(np.repeat(target, outputs, axis=1), dtype=torch.float32)
        loss_fn = nn.MSELoss()
    for _ in range(4):
        for i in range(0, len(xt), 64):
            optimizer.zero_grad()
            loss_fn(model(xt[i : i + 64]), yt[i : i + 64]).backward()
            optimizer.step()
    model.eval()
    preprocessor = {
        "scaler": fitted,
        "imputer": imputer,
        "scaler_type": scaler,
        "imputer_strategy": "median",
        "feature_names": [f"feature_{i}" for i in range(n_features)],
        "is_fitted": True,
    }
    return model, preprocessor


def write_gru_run(
    folder: Path,
    model: GRUModel,
    preprocessor: dict[str, Any] | None,
    *,
    symbol: str = "BTCEUR",
    window: int = 8,
    feature_names: list[str] | None = None,
    selected: list[int] | None = None,
    created: str = "2024-08-16T14:23:01",
    model_config: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    record_window: bool = True,
) -> Path:
    """One run folder as seed 001 writes it: model.pth (GRUTrainer.save_model's dict),
    preprocessor.pkl (DataPreprocessor.save_preprocessor), config.json and metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    names = feature_names or [f"feature_{i}" for i in range(model.gru.input_size)]
    gru = model.gru
    training_config = {
        "sequence_length": window,
        "hidden_size": gru.hidden_size,
        "num_layers": gru.num_layers,
        "dropout": 0.2,
        "learning_rate": 0.01,
    }
    if not record_window:
        training_config.pop("sequence_length")
    torch.save(
        {
            "model_state_dict": model.state_dict(),
            "model_config": model_config
            or {
                "input_size": gru.input_size,
                "hidden_size": gru.hidden_size,
                "num_layers": gru.num_layers,
                "dropout": 0.2,
                "output_size": model.fc2.out_features,
            },
            "training_config": training_config,
            "train_losses": [0.5, 0.25],
            "val_losses": [0.5, 0.3],
            "best_val_loss": 0.3,
            "feature_names": names,
            "selected_features": selected,
            "feature_count": len(names),
            "input_size_actual": gru.input_size,
            "symbol": symbol,
            "created_at": created,
            "model_type": "gru",
        },
        folder / "model.pth",
    )
    if preprocessor is not None:
        joblib.dump(preprocessor, folder / "preprocessor.pkl")
    _json(folder / "config.json", config if config is not None else training_config)
    metadata = {
        "model_type": "gru",
        "run_id": folder.name,
        "symbol": symbol,
        "created_at": created,
        "config": training_config,
        "is_fitted": True,
        "feature_names": names,
        "selected_features": selected,
        "feature_count": len(names),
        "input_size_actual": gru.input_size,
        "training_config": training_config,
    }
    if record_window:
        metadata["sequence_length"] = window
    _json(folder / "metadata.json", metadata)
    return folder


class TradingEnv(gym.Env):
    """A small trading environment: raw-scale market features (optionally the last ``rows``
    of them), a position to hold, buy or sell (Discrete(3)) or change (Box(-1, 1, (1,)))."""

    def __init__(self, n_features: int = 6, *, rows: int = 0, box: bool = False, seed: int = 0):
        super().__init__()
        self.data = np.nan_to_num(market(400, n_features, seed)).astype(np.float32)
        self.rows = rows
        shape = (rows, n_features) if rows else (n_features,)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=shape, dtype=np.float32)
        self.action_space = (
            spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32) if box else spaces.Discrete(3)
        )
        self.t = max(rows, 1)

    def _obs(self) -> np.ndarray:
        if self.rows:
            return self.data[self.t - self.rows : self.t]
        return self.data[self.t]

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = max(self.rows, 1) + int(self.np_random.integers(0, 50))
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        move = (
            float(np.asarray(action).ravel()[0])
            if self.rows or isinstance(self.action_space, spaces.Box)
            else float(int(action) - 1)
        )
        change = float(self.data[self.t, 0] - self.data[self.t - 1, 0])
        self.t += 1
        done = self.t >= len(self.data) - 1
        return self._obs(), move * change, done, False, {}


def train_ppo(
    n_features: int = 6,
    *,
    rows: int = 0,
    box: bool = False,
    net_arch: tuple[int, ...] = (16, 16),
    steps: int = 128,
    normalize: bool = True,
    seed: int = 0,
) -> tuple[Any, Any]:
    """A PPO policy trained for a few steps under VecNormalize (its statistics are what the
    seed saves as model_vecnormalize.pkl), and that VecNormalize."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    env: Any = DummyVecEnv([lambda: TradingEnv(n_features, rows=rows, box=box, seed=seed)])
    if normalize:
        env = VecNormalize(env, norm_obs=True, norm_reward=True, clip_obs=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PPO(
            "MlpPolicy",
            env,
            n_steps=64,
            batch_size=32,
            n_epochs=2,
            seed=seed,
            device="cpu",
            policy_kwargs={"net_arch": {"pi": list(net_arch), "vf": list(net_arch)}},
        )
        model.learn(total_timesteps=steps)
    return model, env if normalize else None


def write_ppo_run(
    folder: Path,
    model: Any,
    vecnormalize: Any,
    *,
    symbol: str = "BTCEUR",
    feature_names: list[str] | None = None,
    action_space_info: Any = None,
    created: str = "2024-08-16T14:40:23",
) -> Path:
    """One run folder as seed 001 writes it: model.zip, model_metadata.json,
    model_vecnormalize.pkl and metadata.json."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model")
    if vecnormalize is not None:
        vecnormalize.save(str(folder / "model_vecnormalize.pkl"))
    shape = list(model.observation_space.shape)
    names = feature_names or [f"feature_{i}" for i in range(shape[-1])]
    space = model.action_space
    if action_space_info is None:
        action_space_info = (
            {"type": "discrete", "n": int(space.n)}
            if isinstance(space, spaces.Discrete)
            else {"type": "continuous", "dim": int(space.shape[0]), "low": -1.0, "high": 1.0}
        )
    _json(
        folder / "model_metadata.json",
        {
            "model_type": "ppo",
            "feature_names": names,
            "observation_shape": shape,
            "action_space_info": action_space_info,
            "symbol": symbol,
            "created_at": created,
        },
    )
    _json(
        folder / "metadata.json",
        {
            "model_type": "ppo",
            "run_id": folder.name,
            "symbol": symbol,
            "created_at": created,
            "config": {"n_steps": 64},
            "is_fitted": True,
            "feature_names": names,
            "selected_features": None,
            "feature_count": len(names),
        },
    )
    return folder


def link_latest(symbol_dir: Path, run_id: str, *, pointer: bool = False) -> None:
    """``latest`` -> the run (a symlink), or ``latest_pointer.txt`` where symlinks fail."""
    if pointer:
        (symbol_dir / "latest_pointer.txt").write_text(str(symbol_dir / run_id))
    else:
        os.symlink(run_id, symbol_dir / "latest")


def created(run_id: str) -> str:
    return datetime.strptime(run_id, "%Y%m%d_%H%M%S").isoformat()


def _json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2))


class Converted(NamedTuple):
    """A converted network, the folder it came from and its original."""

    converted: Any  # tickerserve.publishing.conversion.recipe.Converted
    folder: Path
    original: Any  # the torch module (GRU) or the stable-baselines3 model (PPO)
    extra: Any  # the preprocessor dict (GRU) or the VecNormalize (PPO)


@functools.cache
def networks() -> dict[str, Converted]:
    """Real networks of every shape the conversion covers, converted once per test session
    (in a folder of their own): GRUs (a regressor over 5 of 12 named features with a median
    imputer and a StandardScaler; a 3-class classifier; two named outputs; a 60-row window
    of 20 features) and PPO policies
    (discrete with labelled actions; a box; a 2-D observation)."""
    import tempfile

    from tickerserve.publishing.conversion.gru_runs import GruRun, convert_gru
    from tickerserve.publishing.conversion.ppo_runs import convert_ppo

    root = Path(tempfile.mkdtemp(prefix="networks-"))
    out: dict[str, Converted] = {}
    selected = [0, 2, 5, 8, 11]
    gru, pre = train_gru(5, window=8)
    folder = write_gru_run(root / "gru", gru, pre, feature_names=FEATURES, selected=selected)
    out["gru"] = Converted(
        convert_gru(GruRun(folder / "model.pth", folder), model="n/gru"), folder, gru, pre
    )
    classifier, pre = train_gru(4, window=6, outputs=3, classify=True, scaler="minmax", seed=1)
    folder = write_gru_run(
        root / "gru_classifier",
        classifier,
        pre,
        window=6,
        config={"task": "classification", "classes": ["down", "flat", "up"], "sequence_length": 6},
    )
    out["gru_classifier"] = Converted(
        convert_gru(GruRun(folder / "model.pth", folder), model="n/gru_classifier"),
        folder,
        classifier,
        pre,
    )
    multi, pre = train_gru(4, window=5, outputs=2, scaler="robust", seed=2)
    folder = write_gru_run(
        root / "gru_multi",
        multi,
        pre,
        window=5,
        config={"output_names": ["ret_1h", "ret_4h"], "sequence_length": 5},
    )
    out["gru_multi"] = Converted(
        convert_gru(GruRun(folder / "model.pth", folder), model="n/gru_multi"), folder, multi, pre
    )
    long_gru, pre = train_gru(20, window=60, hidden=16, seed=3)
    folder = write_gru_run(root / "gru_long", long_gru, pre, window=60)
    out["gru_long"] = Converted(
        convert_gru(GruRun(folder / "model.pth", folder), model="n/gru_long"),
        folder,
        long_gru,
        pre,
    )
    actions = {"type": "discrete", "n": 3, "actions": ["hold", "buy", "sell"]}
    for name, kwargs, info in (
        ("ppo", {}, actions),
        ("ppo_box", {"box": True}, None),
        ("ppo_rows", {"rows": 4, "seed": 1}, None),
    ):
        model, vecnormalize = train_ppo(6, **kwargs)
        if kwargs.get("box"):  # means past the bounds, so that predict() clips some actions
            with torch.no_grad():
                model.policy.action_net.weight *= 300.0
        folder = write_ppo_run(root / name, model, vecnormalize, action_space_info=info)
        out[name] = Converted(convert_ppo(folder, model=f"n/{name}"), folder, model, vecnormalize)
    return out


def gru_answers(network: Converted, windows: np.ndarray) -> np.ndarray:
    """What the original answers for raw windows ``(n, rows, features)``: the seed's own
    preprocessing (imputer, scaler), then the torch module (softmax for a classifier)."""
    imputer, scaler = network.extra["imputer"], network.extra["scaler"]
    n, rows, width = windows.shape
    scaled = scaler.transform(imputer.transform(windows.reshape(-1, width)))
    with torch.no_grad():
        out = network.original(torch.as_tensor(scaled.reshape(n, rows, width), dtype=torch.float32))
    if network.converted.bundle.metadata.task == "classification":
        out = torch.softmax(out, dim=1)
    return out.numpy().astype(np.float64)


def ppo_answers(network: Converted, obs: np.ndarray) -> tuple[np.ndarray, Any, np.ndarray]:
    """What stable-baselines3 answers for raw observations: VecNormalize's normalization, then
    ``predict(deterministic=True)`` (actions), the action probabilities (None for a box) and
    the critic's values."""
    model, vecnormalize = network.original, network.extra
    normalized = vecnormalize.normalize_obs(obs.astype(np.float32))
    actions, _ = model.predict(normalized, deterministic=True)
    with torch.no_grad():
        tensor, _ = model.policy.obs_to_tensor(normalized)
        values = model.policy.predict_values(tensor).numpy()[:, 0]
        probabilities = None
        if isinstance(model.action_space, spaces.Discrete):
            probabilities = model.policy.get_distribution(tensor).distribution.probs.numpy()
    return np.asarray(actions), probabilities, values
