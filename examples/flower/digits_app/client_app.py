"""The ClientApp: plain Flower training, with fabricml's mod in front of it."""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fabricml.flower.messages import DATASET_KEY
from fabricml.flower.mod import fabricml_mod

from . import task

app = ClientApp(mods=[fabricml_mod])


@app.train()
def train(msg: Message, context: Context) -> Message:
    cfg, partition = context.run_config, int(context.node_config["partition-id"])
    data = task.rows(str(cfg["data-dir"]), partition)
    net = task.model()
    task.load_parameters(net, msg.content["arrays"].to_numpy_ndarrays())
    round_ = int(msg.content["config"]["server-round"])
    loss = task.fit(net, data, round_, int(cfg["local-epochs"]), int(cfg["batch-size"]), float(cfg["lr"]))
    keys = msg.content["arrays"].keys()
    arrays = ArrayRecord({k: Array(a) for k, a in zip(keys, task.parameters(net), strict=True)})
    content: dict[str, ArrayRecord | MetricRecord | ConfigRecord] = {
        "arrays": arrays,
        "metrics": MetricRecord({"num-examples": len(data.labels), "train-loss": loss}),
        DATASET_KEY: ConfigRecord(dict(task.fingerprint(data, f"participant-{partition + 1}"))),
    }
    return Message(RecordDict(content), reply_to=msg)
