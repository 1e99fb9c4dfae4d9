// Type-checked (tsc --noEmit) in CI: the calls a front end makes, against the generated types.
import { createClient, LosslabError, type Schemas } from "../src/index.ts";

export async function demo(): Promise<number> {
  const api = createClient({ baseUrl: "http://127.0.0.1:8080" });
  const r = await api.loss("mse", { predictions: [0.5, 2.0], targets: [1.0, 0.0], gradient: true });
  const loss: Schemas["LossValue"] = r.loss;
  const g = await api.post("/gradient", { loss: "bce", logits: [2.0, -1.0], targets: [1, 0], activation: "sigmoid", check: true });
  const passed: boolean | undefined = g.check?.passed;
  const viaPath = await api.post("/loss/{kind}", { predictions: [[0.2, 0.8]], targets: [1] }, { kind: "cross_entropy" });
  const run = await api.train({ inputs: [[1]], targets: [0.5], loss: "l2", learning_rate: 0.2, max_iterations: 300 });
  const catalogue = await api.get("/losses");
  // @ts-expect-error: an unknown field is a compile error, as it is a 422 at run time
  await api.loss("mse", { predictions: [1], targets: [1], gradiant: true });
  // @ts-expect-error: /gradient takes no path parameter
  await api.post("/gradient", { loss: "mse", targets: [1], predictions: [1] }, { kind: "mse" });
  try {
    await api.loss("bce", { predictions: [1.5], targets: [1] });
  } catch (e) {
    if (e instanceof LosslabError) return e.fields.length;
  }
  return (typeof loss === "number" ? loss : 0) + (passed ? 1 : 0) + viaPath.count + run.iterations + catalogue.losses.length;
}
