// The `ui` toolkit the page offers to the room: an agent (or anyone) asks this person
// a question with a small form, asks them to confirm an action, or shows a notice.
//
// `ask` takes the form as a JSON Schema (as text, so the tool's own schema stays strict):
// an object whose properties are strings (a text field), strings with `enum` (a choice)
// or booleans (yes/no). The answer is the tool's result: `{answered: true, values}`, or
// `{answered: false, reason: "dismissed"}` when the person closes the card. A call that
// times out or is cancelled removes its card; the caller gets the server's reason.

const STRING = { type: 'string' }
const strict = (properties, descriptions) => ({
  type: 'object',
  properties: Object.fromEntries(Object.entries(properties).map(([key, schema]) => [key, { ...schema, description: descriptions[key] }])),
  required: Object.keys(properties),
  additionalProperties: false
})

export const UI_TOOLKIT = {
  name: 'ui',
  description: 'Ask the person on this page: questions with a small form, confirmations, notices.',
  tools: [
    {
      name: 'ask',
      description: 'Ask this person a question and wait for the answer. The form is a JSON Schema ' +
        'object (as text) whose properties are strings, strings with enum (a choice) or booleans (yes/no).',
      inputSchema: strict({ question: STRING, schema: STRING }, {
        question: 'What to ask, in one or two sentences.',
        schema: 'JSON Schema text of the answer: {"type":"object","properties":{...},"required":[...]}'
      })
    },
    {
      name: 'confirm',
      description: 'Ask this person to confirm an action before you take it; the result says whether they did.',
      inputSchema: strict({ action: STRING }, { action: 'The action, as the person should read it.' })
    },
    {
      name: 'notify',
      description: 'Show this person a short notice (does not wait for them).',
      inputSchema: strict({ message: STRING }, { message: 'The notice.' })
    }
  ]
}

/** The fields of an `ask` form: [{name, label, kind: 'text'|'choice'|'yesno', options, required}]. */
export function formFields (schemaText) {
  let schema
  try {
    schema = JSON.parse(schemaText)
  } catch {
    throw new Error('the form schema is not JSON')
  }
  if (!schema || schema.type !== 'object' || typeof schema.properties !== 'object') {
    throw new Error('the form schema must be an object schema with properties')
  }
  const required = new Set(Array.isArray(schema.required) ? schema.required : [])
  return Object.entries(schema.properties).map(([name, property]) => {
    const label = property.title || property.description || name
    if (property.type === 'boolean') return { name, label, kind: 'yesno', options: ['yes', 'no'], required: required.has(name) }
    if (property.type === 'string' && Array.isArray(property.enum)) {
      return { name, label, kind: 'choice', options: property.enum.map(String), required: required.has(name) }
    }
    if (property.type === 'string') return { name, label, kind: 'text', options: [], required: required.has(name) }
    throw new Error(`field ${name}: only strings, string choices and booleans can be asked`)
  })
}

function fieldElement (field, index) {
  const wrapper = document.createElement('fieldset')
  wrapper.className = 'ui-field'
  const legend = document.createElement('legend')
  legend.textContent = field.label
  wrapper.append(legend)
  if (field.kind === 'text') {
    const input = document.createElement('input')
    input.type = 'text'
    input.name = field.name
    input.required = field.required
    wrapper.append(input)
    return wrapper
  }
  for (const option of field.options) {
    const label = document.createElement('label')
    const input = document.createElement('input')
    input.type = 'radio'
    input.name = field.name
    input.value = option
    input.required = field.required
    label.append(input, ` ${option}`)
    wrapper.append(label)
  }
  return wrapper
}

function readForm (form, fields) {
  const data = new FormData(form)
  const values = {}
  for (const field of fields) {
    const value = data.get(field.name)
    if (value === null || value === '') continue
    values[field.name] = field.kind === 'yesno' ? value === 'yes' : String(value)
  }
  return values
}

/** Show requests in `container`; returns `run(tool, args, {from, signal})` for RoomCalls.offer. */
export function uiToolkit (container, nameOf) {
  const card = (from, title, signal) => {
    const element = document.createElement('form')
    element.className = 'ui-request'
    element.dataset.uiRequest = ''
    const heading = document.createElement('p')
    heading.className = 'ui-question'
    heading.textContent = `${nameOf(from)} asks: ${title}`
    element.append(heading)
    container.append(element)
    container.hidden = false
    const remove = () => {
      element.remove()
      container.hidden = !container.children.length
    }
    signal.addEventListener('abort', remove)
    return { element, remove }
  }
  const buttons = (element, submitText) => {
    const row = document.createElement('div')
    row.className = 'ui-buttons'
    const submit = document.createElement('button')
    submit.type = 'submit'
    submit.className = 'ui-submit'
    submit.textContent = submitText
    const dismiss = document.createElement('button')
    dismiss.type = 'button'
    dismiss.className = 'ui-dismiss'
    dismiss.textContent = 'Dismiss'
    row.append(submit, dismiss)
    element.append(row)
    return { submit, dismiss }
  }

  return async function run (tool, args, { from, signal }) {
    if (tool === 'notify') {
      const { element, remove } = card(from, args.message, signal)
      element.classList.add('ui-notice')
      setTimeout(remove, 8000)
      return 'shown'
    }
    if (tool === 'confirm') {
      const { element, remove } = card(from, args.action, signal)
      const { dismiss } = buttons(element, 'Confirm')
      return await new Promise((resolve) => {
        element.addEventListener('submit', (event) => { event.preventDefault(); remove(); resolve({ confirmed: true }) })
        dismiss.addEventListener('click', () => { remove(); resolve({ confirmed: false, reason: 'dismissed' }) })
        signal.addEventListener('abort', () => resolve(null))
      })
    }
    if (tool === 'ask') {
      const fields = formFields(args.schema) // a bad schema is the caller's error, before any card
      const { element, remove } = card(from, args.question, signal)
      fields.forEach((field, index) => element.append(fieldElement(field, index)))
      const { dismiss } = buttons(element, 'Answer')
      return await new Promise((resolve) => {
        element.addEventListener('submit', (event) => {
          event.preventDefault()
          remove()
          resolve({ answered: true, values: readForm(element, fields) })
        })
        dismiss.addEventListener('click', () => { remove(); resolve({ answered: false, reason: 'dismissed' }) })
        signal.addEventListener('abort', () => resolve(null))
      })
    }
    throw new Error(`unknown tool ${tool}`)
  }
}
