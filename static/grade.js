// "Check my answer": the learner picks a task (the loss panel's inputs, the activation
// panel's setup, or the textbook neuron), types what they worked out, and POST /grade
// says passed or failed, names the classic mistake and gives its feedback (reveal diff).
// Every verdict and number shown is the service's; nothing is computed here.

const $ = (id) => document.getElementById(id);

function parseList(text) {
  const t = (text || '').trim();
  if (!t) return undefined;
  try {
    return JSON.parse(t.startsWith('[') ? t : `[${t}]`);
  } catch {
    return t.split(/[\s,;]+/).filter(Boolean).map(Number);
  }
}

function parseClaim(text) {
  const t = (text || '').trim();
  if (!t) return undefined;
  try {
    return JSON.parse(t);
  } catch {
    return t; // judged (and failed) by the service as a string, never rejected here
  }
}

/** The task the learner picked, from the other panels' current inputs. */
function currentTask(source) {
  if (source === 'loss') {
    const task = {
      kind: $('loss-kind').value,
      predictions: parseList($('predictions').value),
      targets: parseList($('targets').value),
      reduction: $('reduction').value || 'mean',
    };
    const weights = parseList($('weights') && $('weights').value);
    if (weights) task.weights = weights;
    if ($('from-logits') && $('from-logits').checked) task.from_logits = true;
    return { loss: task };
  }
  if (source === 'gradient') {
    return {
      gradient: {
        loss: $('act-loss').value,
        logits: parseList($('logits').value),
        targets: parseList($('act-targets').value),
        activation: $('activation').value,
      },
    };
  }
  return {
    train: {
      inputs: [[1.0]], targets: [0.5], activation: 'sigmoid', loss: 'l2',
      init: { weights: Math.log(9), bias: 0.0 }, use_bias: false, learning_rate: 0.2,
      max_iterations: 10000, stop: { loss_below: 0.001 }, trace_every: 0,
    },
  };
}

/** The answer field each task type is checked on here. */
const FIELDS = {
  loss: ['loss', 'gradient'],
  gradient: ['d_logits', 'd_predictions', 'loss'],
  train: ['iterations'],
};

function fillFields() {
  const source = $('grade-task').value;
  const select = $('grade-field');
  select.replaceChildren(...FIELDS[source === 'neuron' ? 'train' : source].map((f) => {
    const o = document.createElement('option');
    o.value = f;
    o.textContent = f;
    return o;
  }));
}

function show(item) {
  const status = $('grade-status');
  status.textContent = item.status;
  status.dataset.status = item.status;
  const list = $('grade-diagnosis');
  list.replaceChildren(...(item.diagnosis || []).map((d) => {
    const li = document.createElement('li');
    li.dataset.testid = 'grade-mistake';
    li.setAttribute('data-testid', 'grade-mistake');
    const code = document.createElement('code');
    code.textContent = d.mistake;
    li.append(code, ` ${d.message}`);
    return li;
  }));
  $('grade-feedback').textContent = item.problem
    ? `${item.feedback} (${(item.problem.errors[0] || {}).field || ''})`
    : item.feedback;
}

async function check(event) {
  event.preventDefault();
  const source = $('grade-task').value;
  const field = $('grade-field').value;
  const answer = { [field]: parseClaim($('grade-answer').value) };
  const body = { reveal: 'diff', items: [{ id: 'playground', task: currentTask(source), answer }] };
  $('grade-status').textContent = '…';
  try {
    const res = await fetch('/grade', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(body),
    });
    const data = await res.json();
    if (!res.ok) {
      show({ status: 'error', diagnosis: [], feedback: data.detail || data.title });
      return;
    }
    show(data.items[0]);
  } catch (e) {
    show({ status: 'error', diagnosis: [], feedback: String(e) });
  }
}

function init() {
  if (!$('grade-form')) return;
  fillFields();
  $('grade-task').addEventListener('change', fillFields);
  $('grade-form').addEventListener('submit', check);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
