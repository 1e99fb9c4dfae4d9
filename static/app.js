// placeholder: the playground lands from its branch
